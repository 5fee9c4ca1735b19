"""Imports run one way: stages -> training / judging -> embed -> model / data -> artifacts (never back up).

Read from the source (every ``import`` of a ``uniembed`` module, relative or absolute, at any depth), so a new
upward import fails here, naming the file and the module it imports."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "uniembed"
BASE = {"artifacts", "ranges", "provenance", "parts"}
#: package -> the packages it may not import
FORBIDDEN = {
    "model": {"data", "embed", "vision", "train", "judge", "rerank", "instruct", "mine", "negatives", "evaluate",
              "interop", "stages", "plan"},
    "data": {"model", "embed", "vision", "train", "judge", "rerank", "instruct", "mine", "negatives", "evaluate",
             "interop", "stages", "plan"},
    "embed": {"vision", "train", "judge", "rerank", "instruct", "mine", "negatives", "evaluate", "interop", "stages", "plan"},
    "judge": {"train", "rerank", "instruct", "evaluate", "stages", "config_schema", "config", "workflow_checks", "plan"},
    "rerank": {"train", "instruct", "stages", "plan"},   # the trainer's rerank task imports rerank, never the reverse
    "interop": {"train", "judge", "rerank", "instruct", "evaluate", "stages", "plan"},
    "evaluate": {"train", "rerank", "instruct", "stages", "plan"},   # recall + rerank fusion lives in rerank, which reads evaluate
    "plan": {"stages"},   # the cost plan reads configs and models as the stages do, beside them
}


def imported_packages(path: Path) -> set[tuple[str, str]]:
    """(top-level uniembed package, dotted module) of every uniembed import in ``path``."""
    parts = path.relative_to(SRC).parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:-1])[: len(parts) - node.level]
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").startswith("uniembed."):
                target = node.module.split(".")[1:]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.startswith("uniembed.")]
            found |= {(n[0].removesuffix(".py"), ".".join(n)) for n in names if n}
            continue
        else:
            continue
        if target:
            found.add((target[0].removesuffix(".py"), ".".join(target)))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_lower_package_imports_nothing_above_it(package):
    upward = [f"{path.relative_to(SRC)} imports uniembed.{module}" for path in sorted((SRC / package).rglob("*.py"))
              for top, module in imported_packages(path) if top in FORBIDDEN[package]]
    assert not upward, "\n".join(upward)


def test_only_stages_import_stages():
    offenders = [f"{path.relative_to(SRC)} imports uniembed.{module}" for path in sorted(SRC.rglob("*.py"))
                 if path.relative_to(SRC).parts[0] != "stages"
                 for top, module in imported_packages(path) if top == "stages"]
    assert not offenders, "\n".join(offenders)


def test_the_import_reader_sees_relative_and_absolute_imports(tmp_path):
    probe = SRC / "model" / "chat.py"
    assert ("model", "model.tokenizer") in imported_packages(probe)
    assert all(top in BASE | {"model"} for top, _ in imported_packages(probe))


def test_no_two_packages_import_each_other_even_through_others():
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        own = path.relative_to(SRC).parts[0].removesuffix(".py")
        edges.setdefault(own, set()).update(top for top, _ in imported_packages(path) if top != own)

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    loops = sorted((a, b) for a in edges for b in reachable(a) if a < b and a in reachable(b))
    assert not loops, f"import loops between packages: {loops}"


def test_no_module_outside_the_families_names_a_family():
    """Family knowledge lives in uniembed/model/families/: no other module imports a family's module or holds a
    family's model_type as a string (adding a family is one module)."""
    from uniembed.model.families import families

    names = set(families())
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "model" / "families"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.ImportFrom) and any(f"families.{n}" in (node.module or "") for n in names | {"qwen"}):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} imports {node.module}")
    assert not offenders, offenders
