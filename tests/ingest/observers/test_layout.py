"""The intake's modules import one way (aiohttp-demos' layout): app -> routes -> views -> typedefs, with
the AppKeys in the leaf typedefs.py, and nothing in ingest/ imports back into a module that imports it."""

from __future__ import annotations

import grimp

PACKAGE = "ingest.observers"


def test_app_routes_and_views_import_one_way() -> None:
    graph = grimp.build_graph("ingest")
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert f"{PACKAGE}.app" not in imports[f"{PACKAGE}.routes"] | imports[f"{PACKAGE}.views"]
    assert f"{PACKAGE}.routes" not in imports[f"{PACKAGE}.views"]
    assert not {f"{PACKAGE}.app", f"{PACKAGE}.routes", f"{PACKAGE}.views"} & graph.find_upstream_modules(
        f"{PACKAGE}.typedefs"
    )
    assert f"{PACKAGE}.typedefs" in imports[f"{PACKAGE}.views"] & imports[f"{PACKAGE}.routes"]


def test_no_import_cycles_in_ingest() -> None:
    graph = grimp.build_graph("ingest")
    cycles = [
        (module, other)
        for module in sorted(graph.modules)
        for other in sorted(graph.find_modules_directly_imported_by(module))
        if graph.chain_exists(importer=other, imported=module)
    ]
    assert cycles == []
