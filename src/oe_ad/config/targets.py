"""What a config node's ``_target_`` accepts and declares, read from its source without importing it.

The schema checks every key of a node (``method``, ``net``, ``data``, ``oe``, ...) against the keyword
arguments of its ``_target_``, and reads the method's class attributes (``oe_use``, ``needs_training``),
before torch and Lightning are imported: a bad option is refused in about a second, not after the ~10 s
those imports take. The source file is found without importing its package and parsed with ``ast``.

Keyword arguments: those of ``__init__`` (a dataclass: its fields; a function: its parameters). A
``**kwargs`` handed on with ``super().__init__(..., **kwargs)`` adds the keywords of the (first) base, down
to a class without ``**kwargs`` or a base from torch or Lightning (which take no config keys); a ``**kwargs``
used otherwise accepts any key (nothing is checked). Where the source cannot be read that way (no ``.py``
file, a base bound by ``import *``), the target is imported and inspected by the same rule.
"""

import ast
import importlib
import importlib.util
import inspect
import textwrap
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
    attributes with literal values, inherited ones included (a subclass's value wins)."""

    params: frozenset[str] | None
    attrs: dict[str, Any] = field(default_factory=dict)


class Unreadable(Exception):
    """The source does not tell (the caller imports the target instead)."""


def target_info(target: str) -> TargetInfo:
    """Keywords and class attributes of ``package.module.Name`` (statically where possible)."""
    try:
        return _static(target)
    except Unreadable:
        return _live(target)


# -- static: the source file, parsed ---------------------------------------------------------------------
def module_file(module: str) -> Path | None:
    """The ``.py`` file of a module, found along its package's search path without importing anything."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: found, not imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    dirs = [Path(d) for d in spec.submodule_search_locations or []]
    for i, part in enumerate(parts[1:], start=2):
        last = i == len(parts)
        if last:
            for d in dirs:
                for path in (d / f"{part}.py", d / part / "__init__.py"):
                    if path.is_file():
                        return path
            return None
        dirs = [d / part for d in dirs if (d / part).is_dir()]
    return None


@lru_cache(maxsize=256)
def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        raise Unreadable(path) from None


def _module_of(module: str, level: int, name: str | None, package: str) -> str:
    """The absolute module of ``from <level dots><name> import ...`` inside ``package``."""
    if level == 0:
        return name or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


def _bindings(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    """Top-level names bound by imports -> the qualified name they stand for."""
    package = module if is_package else module.rpartition(".")[0]
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = _module_of(module, node.level, node.module, package)
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
    return out


def _qualified(expr: ast.expr, bindings: dict[str, str], module: str, local: set[str]) -> str:
    if isinstance(expr, ast.Name):
        if expr.id in local:
            return f"{module}.{expr.id}"
        if expr.id in ROOTS:
            return f"builtins.{expr.id}"
        if expr.id in bindings:
            return bindings[expr.id]
        raise Unreadable(expr.id)
    if isinstance(expr, ast.Attribute):
        return f"{_qualified(expr.value, bindings, module, local)}.{expr.attr}"
    if isinstance(expr, ast.Subscript):  # Generic[T]
        return _qualified(expr.value, bindings, module, local)
    raise Unreadable(ast.dump(expr))


def _split(target: str) -> list[tuple[str, str]]:
    """Candidate (module, attribute path) splits of a dotted name, longest module first."""
    parts = target.split(".")
    return [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]


def _find(target: str, depth: int = 0) -> tuple[ast.AST, str, ast.Module]:
    """The ClassDef or FunctionDef behind ``target``, its module and the module's tree (re-exports followed)."""
    if depth > 8:
        raise Unreadable(target)
    for module, name in _split(target):
        path = module_file(module)
        if path is None or "." in name:
            continue
        tree = _parse(path)
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                return node, module, tree
        bound = _bindings(tree, module, path.name == "__init__.py")
        if name in bound:
            return _find(bound[name], depth + 1)
        raise Unreadable(target)
    raise Unreadable(target)


def _is_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        d = d.func if isinstance(d, ast.Call) else d
        if (isinstance(d, ast.Name) and d.id == "dataclass") or (
            isinstance(d, ast.Attribute) and d.attr == "dataclass"
        ):
            return True
    return False


def _arguments(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], bool]:
    """Keyword-passable parameter names (without ``self``) and whether there is a ``**kwargs``."""
    a = fn.args
    names = {x.arg for x in [*a.args, *a.kwonlyargs]} - {"self", "cls"}
    return names, a.kwarg is not None


def _passes_kwargs_on(fn: ast.FunctionDef) -> bool:
    """Whether the ``**kwargs`` of ``__init__`` go to a base's ``__init__`` (``super().__init__(..., **kwargs)``);
    kept or used otherwise, they accept any key."""
    name = fn.args.kwarg.arg if fn.args.kwarg else None
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    return any(
        k.arg is None and isinstance(k.value, ast.Name) and k.value.id == name
        for call in calls
        if call.func.attr == "__init__"
        for k in call.keywords
    )


def _literal(value: ast.expr | None) -> tuple[bool, Any]:
    if value is None:
        return False, None
    try:
        return True, ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


@lru_cache(maxsize=256)
def _static(target: str) -> TargetInfo:
    node, module, tree = _find(target)
    if isinstance(node, ast.FunctionDef):
        names, open_ = _arguments(node)
        return TargetInfo(None if open_ else frozenset(names))
    assert isinstance(node, ast.ClassDef)
    path = module_file(module)
    bindings = _bindings(tree, module, path is not None and path.name == "__init__.py")
    local = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    bases = [_qualified(b, bindings, module, local) for b in node.bases]
    inherited = [_base_info(b) for b in bases]

    attrs: dict[str, Any] = {}
    for info in reversed(inherited):  # the first base wins over later ones, the class over its bases
        attrs.update(info.attrs)
    fields: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            ok, value = _literal(stmt.value)
            for t in stmt.targets:
                if ok and isinstance(t, ast.Name):
                    attrs[t.id] = value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            fields.add(stmt.target.id)
            ok, value = _literal(stmt.value)
            if ok:
                attrs[stmt.target.id] = value

    init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None and _is_dataclass(node):
        inherited_fields = frozenset().union(*(i.params or frozenset() for i in inherited))
        return TargetInfo(frozenset(fields) | inherited_fields, attrs)
    if init is None:  # the constructor of the first base
        return TargetInfo(inherited[0].params if inherited else frozenset(), attrs)
    names, has_kwargs = _arguments(init)
    if not has_kwargs:
        return TargetInfo(frozenset(names), attrs)
    if not _passes_kwargs_on(init):
        return TargetInfo(None, attrs)
    if not inherited:  # **kwargs that go to object: nothing more
        return TargetInfo(frozenset(names), attrs)
    if inherited[0].params is None:
        return TargetInfo(None, attrs)
    return TargetInfo(frozenset(names) | inherited[0].params, attrs)


def _base_info(qualified: str) -> TargetInfo:
    if qualified.startswith(FRAMEWORKS):
        return TargetInfo(frozenset())
    return _static(qualified)


# -- live: the imported target, inspected ---------------------------------------------------------------
def _live(target: str) -> TargetInfo:
    from hydra.utils import get_object

    obj = get_object(target)
    if not inspect.isclass(obj):
        params = inspect.signature(obj).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return TargetInfo(None)
        return TargetInfo(frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)))
    attrs = {k: v for klass in reversed(obj.__mro__) for k, v in vars(klass).items() if _plain(v)}
    names: set[str] = set()
    for i, klass in enumerate(obj.__mro__):
        if i and (klass is object or f"{klass.__module__}.".startswith(FRAMEWORKS)):
            break
        init = vars(klass).get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
        if not _source_passes_kwargs_on(init):
            return TargetInfo(None, attrs)
    return TargetInfo(frozenset(names), attrs)


def _source_passes_kwargs_on(init: Any) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return False
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)), None)
    return fn is not None and _passes_kwargs_on(fn)


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), tuple))
