"""What a config node's ``_target_`` accepts and declares, read from its source without importing it.

The schema checks every key of a node (``method``, ``net``, ``data``, ``oe``, ...) against the keywords of its
``_target_`` and reads the method's class attributes (``oe_use``, ``needs_training``) before torch and Lightning
are imported: a bad option is refused in about a second, not after the ~10 s those imports take. The source file
is found without importing its package and parsed with ``ast``.

Keywords: those of ``__init__`` (a dataclass: its fields; a function: its parameters). A ``**kwargs`` handed on
with ``super().__init__(..., **kwargs)`` adds the keywords of the first base, down to a base from torch or
Lightning (which take no config keys); a ``**kwargs`` used otherwise, or a source that cannot be read this way
(no ``.py`` file, a name bound by ``import *``), accepts any key: nothing is checked.
"""

import ast
import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Bases whose constructors take no config keys: the walk along **kwargs stops there.
FRAMEWORKS = ("torch.", "pytorch_lightning.", "lightning.", "lightning_fabric.", "abc.", "typing.", "builtins.")
ROOTS = {"object", "ABC", "Generic", "Protocol"}


@dataclass(frozen=True)
class TargetInfo:
    """``params``: the keywords the target accepts (None: any, as far as can be told); ``attrs``: class
    attributes with literal values, inherited ones included (a subclass's value wins); ``types``: the keywords'
    annotations as written (``int | None``)."""

    params: frozenset[str] | None
    attrs: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


class Unreadable(Exception):
    """The source does not tell."""


def target_info(target: str) -> TargetInfo:
    """Keywords and class attributes of ``package.module.Name``; ``params`` None where the source does not tell."""
    try:
        return _info(target)
    except (Unreadable, RecursionError):
        return TargetInfo(None)


def module_file(module: str) -> Path | None:
    """The ``.py`` file of a module, found along its package's search path without importing anything."""
    first, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(first)  # a top-level name: found, not imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    dirs = [Path(d) for d in spec.submodule_search_locations or []]
    for part in rest[:-1]:
        dirs = [d / part for d in dirs if (d / part).is_dir()]
    candidates = (p for d in dirs for p in (d / f"{rest[-1]}.py", d / rest[-1] / "__init__.py"))
    return next((p for p in candidates if p.is_file()), None)


@lru_cache(maxsize=256)
def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        raise Unreadable(path) from None


def _bindings(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    """Top-level names bound by imports -> the qualified name they stand for."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            source = ".".join(p for p in (base, node.module) if p)
            out |= {a.asname or a.name: f"{source}.{a.name}" for a in node.names if a.name != "*"}
        elif isinstance(node, ast.Import):
            out |= {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0] for a in node.names}
    return out


def _find(target: str, depth: int = 0) -> tuple[ast.ClassDef | ast.FunctionDef, str, dict[str, str]]:
    """The class or function behind ``target``, its module and the module's import bindings (re-exports followed)."""
    module, _, name = target.rpartition(".")
    path = module_file(module) if module and depth < 8 else None
    if path is None:
        raise Unreadable(target)
    tree = _parse(path)
    bound = _bindings(tree, module, path.name == "__init__.py")
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            local = {n.name: f"{module}.{n.name}" for n in tree.body if isinstance(n, ast.ClassDef)}
            return node, module, bound | local
    if name in bound:
        return _find(bound[name], depth + 1)
    raise Unreadable(target)


def _qualified(expr: ast.expr, names: dict[str, str]) -> str:
    if isinstance(expr, ast.Name):
        if expr.id in ROOTS:
            return f"builtins.{expr.id}"
        if expr.id in names:
            return names[expr.id]
        raise Unreadable(expr.id)
    if isinstance(expr, ast.Attribute):
        return f"{_qualified(expr.value, names)}.{expr.attr}"
    if isinstance(expr, ast.Subscript):  # Generic[T]
        return _qualified(expr.value, names)
    raise Unreadable(ast.dump(expr))


def _keywords(fn: ast.FunctionDef) -> tuple[set[str], ast.arg | None]:
    """Keyword-passable parameter names (without ``self``) and the ``**kwargs`` parameter, if any."""
    return {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]} - {"self", "cls"}, fn.args.kwarg


def _annotations(fn: ast.FunctionDef) -> dict[str, str]:
    return {a.arg: ast.unparse(a.annotation) for a in [*fn.args.args, *fn.args.kwonlyargs] if a.annotation}


def _hands_kwargs_to_base(fn: ast.FunctionDef, kwarg: str) -> bool:
    """Whether ``__init__`` passes its ``**kwargs`` on as ``super().__init__(..., **kwargs)``."""
    inits = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "__init__"]
    return any(k.arg is None and getattr(k.value, "id", None) == kwarg for c in inits for k in c.keywords)


def _literal(value: ast.expr | None) -> tuple[bool, Any]:
    try:
        return value is not None, ast.literal_eval(value) if value is not None else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


@lru_cache(maxsize=256)
def _info(target: str) -> TargetInfo:
    node, _, names = _find(target)
    if isinstance(node, ast.FunctionDef):
        params, kwarg = _keywords(node)
        return TargetInfo(None if kwarg else frozenset(params), {}, _annotations(node))
    bases = [_qualified(b, names) for b in node.bases]
    inherited = [TargetInfo(frozenset()) if b.startswith(FRAMEWORKS) else _info(b) for b in bases]
    attrs: dict[str, Any] = {}
    types: dict[str, str] = {}
    for info in reversed(inherited):  # the first base wins over later ones, the class over its bases
        attrs |= info.attrs
        types |= info.types
    fields: set[str] = set()
    for stmt in node.body:
        annotated = isinstance(stmt, ast.AnnAssign)
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if annotated else []
        ok, value = _literal(getattr(stmt, "value", None))
        for t in targets:
            if isinstance(t, ast.Name):
                fields |= {t.id} if annotated else set()
                types |= {t.id: ast.unparse(stmt.annotation)} if annotated else {}
                attrs |= {t.id: value} if ok else {}
    base_params = inherited[0].params if inherited else frozenset()
    init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None:
        is_dataclass = any("dataclass" in ast.unparse(d) for d in node.decorator_list)
        if not is_dataclass:
            return TargetInfo(base_params, attrs, types)
        inherited_fields = frozenset().union(*(i.params or frozenset() for i in inherited))
        return TargetInfo(frozenset(fields) | inherited_fields, attrs, types)
    params, kwarg = _keywords(init)
    types |= _annotations(init)
    if kwarg is None:
        return TargetInfo(frozenset(params), attrs, types)
    if not _hands_kwargs_to_base(init, kwarg.arg) or base_params is None:
        return TargetInfo(None, attrs, types)
    return TargetInfo(frozenset(params) | base_params, attrs, types)
