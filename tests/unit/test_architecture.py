"""The package import rule of ``../shared/ARCHITECTURE.md``, checked on the source.

Every import in ``src/retake`` is read with ``ast`` (also imports inside functions and ``TYPE_CHECKING`` blocks, so
a lazy import cannot hide an edge). A "package" is the first name under ``retake``: ``retake.streams.lifecycle``
is in ``streams``, ``retake/config.py`` is ``config``, ``retake/__init__.py`` is ``retake``. The tests fail on an
import between packages that ``ALLOWED`` does not list and on any cycle between packages.

``python -m tests.unit.test_architecture`` prints the package graph as it is.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import retake

SOURCE = Path(retake.__file__).parent

# Small shared modules any package may import. They import nothing of the project but each other (below).
LEAVES = frozenset(
    {"retake", "config", "errors", "events", "ratelimit", "images", "live", "token_info", "ids", "principal"}
    | {"extensions"}
)
DOMAIN = frozenset({"identity", "accounts", "chat", "ledger", "streams", "webhooks", "restream", "clips"})

# The architecture: package -> the packages it may import. Dependencies point one way (server → domain → store).
ALLOWED: dict[str, frozenset[str]] = {
    # -- leaves
    "retake": frozenset({"extensions"}),  # the root package: __version__, and the switch to pure Python first
    "extensions": frozenset(),  # which modules are compiled (setup.py reads it before the package is installed)
    "config": frozenset(),  # the one Settings object; it imports nothing of the project
    "errors": frozenset(),  # the exception tree the edge translates to {error, code}
    "events": frozenset(),  # the in-process event bus services publish on
    "live": frozenset(),  # this node's live state (LiveRegistry): written by streams, read by accounts
    "token_info": frozenset(),  # the token as streams hands it out and the ledger makes it
    "principal": frozenset(),  # who a request acts as: made by the auth layer, taken by chat, ledger, streams
    "images": frozenset({"errors"}),  # uploaded image storage
    "ids": frozenset({"errors"}),  # numeric ids and cursors from requests: ASCII digits only
    "ratelimit": frozenset({"config", "errors"}),  # rate strings are parsed by config
    # a leaf: the media contract ingest and media share (the media message, AMF0, parsed AVC/AAC headers)
    "av": frozenset(),
    # -- the bottom: storage, and the protocol layers that take callbacks and small Protocols
    "store": frozenset(),  # engine, tables, migrations
    "ingest": frozenset({"av"}),  # RTMP: sans-IO protocol and its asyncio server; imports nothing above it
    "media": frozenset({"av"}),  # FLV, fMP4/CMAF, LL-HLS; imports nothing above it
    "skill": frozenset(),  # the skill.md template
    # -- the domain, a DAG: streams → ledger → chat; streams → accounts → identity; all → store
    "identity": frozenset({"store"}) | LEAVES,  # tokens, JWTs, wallet signatures, tweets, viewer accounts
    "chat": frozenset({"store"}) | LEAVES,  # chat, moderation, operator desk; calls the ledger through a port
    "accounts": frozenset({"identity", "store"}) | LEAVES,  # agents, profiles, directory, who a bearer is
    "ledger": frozenset({"chat", "store"}) | LEAVES,  # bonding curve and trades; checks chat's mute gate
    # the lifecycle: the one place where store, media, ingest, accounts and the ledger meet
    "streams": frozenset({"accounts", "identity", "ledger", "chat", "av", "media", "ingest", "store"}) | LEAVES,
    # push to agents: maps bus events to agent events, the durable outbox and its delivery worker
    "webhooks": frozenset({"store"}) | LEAVES,
    # restream: pushes a live stream (a media subscription) to other platforms with the ingest's RTMP client
    "restream": frozenset({"store", "av", "ingest", "media"}) | LEAVES,
    # clips: the last seconds of a live stream remuxed from its recording's journal and files (media's names)
    "clips": frozenset({"identity", "media", "store"}) | LEAVES,
    # -- the edge: HTTP API, Socket.IO, pages, playback, and the assembly of the platform
    "server": DOMAIN | {"store", "av", "ingest", "media", "skill"} | LEAVES,
    # -- clients and entry points
    "agent": frozenset({"retake"}),  # the agent SDK and go-live runtime: never the server side
    "cli": DOMAIN | {"server", "agent", "store", "av", "ingest", "media", "skill"} | LEAVES,  # `retake …` commands
    "__main__": frozenset({"cli"}),
}


@dataclass(frozen=True)
class Edge:
    source: str  # package
    target: str
    where: str  # file:line of one import that makes the edge

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.where})"


def package_of(module: str) -> str:
    """``retake.streams.lifecycle`` → ``streams``; ``retake`` → ``retake``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """Every module an import statement anywhere in ``tree`` names, absolute, with its line."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):  # walks into functions, classes and ``if TYPE_CHECKING:`` blocks alike
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, one level up per extra dot
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base == "retake":  # ``from retake import streams`` names a package, ``__version__`` the root
                found += [(f"retake.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((base, node.lineno))
    return found


def package_edges(root: Path = SOURCE) -> list[Edge]:
    """One edge per (package, imported package), with the first import found that makes it."""
    packages = {p.stem if p.is_file() else p.name for p in root.iterdir() if p.suffix == ".py" or p.is_dir()}
    edges: dict[tuple[str, str], Edge] = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        source = package_of(module)
        tree = ast.parse(path.read_text(), str(path))
        for name, line in imported_modules(tree, module, path.name == "__init__.py"):
            if name != "retake" and not name.startswith("retake."):
                continue
            target = package_of(name)
            if target not in packages:
                target = "retake"  # a name of the root package (``from retake import __version__``)
            if target != source:
                where = f"{path.relative_to(root.parent)}:{line}"
                edges.setdefault((source, target), Edge(source, target, where))
    return sorted(edges.values(), key=lambda e: (e.source, e.target))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def graph_of(edges: list[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        graph[edge.source].add(edge.target)
    return graph


def forbidden(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if e.target not in ALLOWED.get(e.source, frozenset())]


# -- the rule ------------------------------------------------------------------------------------------------


def test_every_package_has_a_place_in_the_architecture() -> None:
    packages = {package_of(module_name(p, SOURCE)) for p in SOURCE.rglob("*.py")}
    assert sorted(packages - set(ALLOWED)) == [], "add the new package to ALLOWED, with what it may import"


def test_no_import_breaks_the_one_way_rule() -> None:
    bad = forbidden(package_edges())
    assert not bad, "imports not allowed by ALLOWED (tests/unit/test_architecture.py):\n" + "\n".join(map(str, bad))


def test_no_cycle_between_packages() -> None:
    edges = package_edges()
    found = cycles(graph_of(edges))
    detail = [str(e) for e in edges if any(e.source in c and e.target in c for c in found)]
    assert not found, f"package cycles {found}:\n" + "\n".join(detail)


def test_the_allowed_graph_itself_has_no_cycle() -> None:
    # So the architecture cannot permit a cycle that the code has not made yet.
    assert cycles({source: set(targets) for source, targets in ALLOWED.items()}) == []


# -- the reader, on sources written for the purpose ----------------------------------------------------------------


def test_the_reader_sees_lazy_type_checking_and_relative_imports(tmp_path: Path) -> None:
    root = tmp_path / "retake"
    (root / "streams").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "config.py").write_text("")
    (root / "streams" / "__init__.py").write_text("")
    (root / "streams" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"  # inside the package: no edge
        "from ..config import Settings\n"
        "if TYPE_CHECKING:\n"
        "    from retake.server.platform import Platform\n"
        "def later() -> None:\n"
        "    import retake.agent.client\n"
        "    from retake import __version__, ledger\n"
    )
    (root / "server").mkdir()
    (root / "server" / "__init__.py").write_text("from retake.streams import a\n")
    (root / "agent").mkdir()
    (root / "ledger").mkdir()
    edges = package_edges(root)
    assert [(e.source, e.target) for e in edges] == [
        ("server", "streams"),
        ("streams", "agent"),
        ("streams", "config"),
        ("streams", "ledger"),
        ("streams", "retake"),
        ("streams", "server"),
    ]
    assert edges[-1].where == "retake/streams/a.py:5"
    assert cycles(graph_of(edges)) == [["server", "streams"]]
    assert [str(e) for e in forbidden(edges)] == [
        "streams -> agent  (retake/streams/a.py:7)",
        "streams -> server  (retake/streams/a.py:5)",
    ]


def main() -> None:
    """Print the package graph: one line per package with what it imports."""
    graph = graph_of(package_edges())
    for source in sorted(graph):
        sys.stdout.write(f"{source} -> {', '.join(sorted(graph[source]))}\n")


if __name__ == "__main__":
    main()
