"""The structure holds: docs/architecture.md lists every module, none is over 300 lines, the
imports form no cycle (counting those inside functions), an import inside a function says
why, the light modules import no TensorFlow, and the layer contract is kept."""

import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "kerasae")
MAX_LINES = 300
#: modules `kerasae list`/`info`/`--help` and the argument checks import: no TensorFlow
LIGHT = (
    "kerasae",
    "kerasae.cli",
    "kerasae.cli.train",
    "kerasae.cli.models",
    "kerasae.cli.export",
    "kerasae.cli.sample",
    "kerasae.cli.evaluate",
    "kerasae.cli.detect",
    "kerasae.cli.compare",
    "kerasae.cli.fit_sampler",
    "kerasae.cli.convert_tfrecord",
    "kerasae.cli.report",
    "kerasae.runs.threshold",
    "kerasae.export.formats",
    "kerasae.export.layouts",
    "kerasae.export.triton",
    "kerasae.export.tfserving",
    "kerasae.data.named",
    "kerasae.data.dsprites",
    "kerasae.data.schemes",
    "kerasae.data.streams",
    "kerasae.runs.config",
    "kerasae.runs.folder",
    "kerasae.models.registry",
    "kerasae.models.introspect",
    "kerasae.models.source",
    "kerasae.samplers.base",
    "kerasae.data.sources",
    "kerasae.data.options",
    "kerasae.export.registry",
    "kerasae.nets.registry",
    "kerasae.report",
    "kerasae.evaluation.disentanglement_run",
    "kerasae.evaluation.factor_labels",
    "kerasae.scaffold",
    "kerasae.models",
    "kerasae.data",
    "kerasae.samplers",
    "kerasae.export",
    "kerasae.runs",
    "kerasae.nets",
    "kerasae.callbacks",
    "kerasae.evaluation",
    "kerasae.probability",
    "kerasae.testing",
)


def modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def test_docs_architecture_lists_every_module():
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as f:
        doc = f.read()
    missing = [rel for rel, _ in modules() if f"`{rel}`" not in doc]
    assert not missing, f"docs/architecture.md does not list {missing}"
    listed = {part.strip("`") for part in doc.split() if part.startswith("`kerasae/")}
    gone = sorted(
        p
        for p in listed
        if p.endswith(".py`") or p.endswith(".py")
        if not os.path.exists(os.path.join(ROOT, p.strip("`|")))
    )
    assert not gone, f"docs/architecture.md lists modules that do not exist: {gone}"


def test_no_module_is_over_300_lines():
    long = {
        rel: n
        for rel, path in modules()
        if (n := len(open(path, encoding="utf-8").read().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_module_opens_with_a_docstring():
    bare = [
        rel
        for rel, path in modules()
        if not ast.get_docstring(ast.parse(open(path, encoding="utf-8").read()))
    ]
    assert not bare, f"modules without a docstring: {bare}"


def test_a_package_says_what_it_may_import():
    for rel, path in modules():
        if rel.endswith("__init__.py") and rel.count("/") == 2:
            doc = ast.get_docstring(ast.parse(open(path, encoding="utf-8").read()))
            assert (
                "May import" in doc or "imports nothing" in doc.lower() or "below the CLI" in doc
            ), f"{rel}'s docstring does not say what it may import"


def _cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_counting_imports_inside_functions():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("kerasae")
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert not _cycles(edges), f"import cycles: {_cycles(edges)}"
    assert not any("kerasae" in edges[m] for m in edges if m != "kerasae"), (
        "a module imports the kerasae facade; import the module that defines the name"
    )


def test_no_cycle_through_a_package_init():
    # `from kerasae.data import x` runs kerasae/data/__init__.py first: counted as an import
    # of the package too (grimp counts only the module x), as DESIGN's import-graph check does
    names = {rel[:-3].replace("/", ".").removesuffix(".__init__") for rel, _ in modules()}
    edges = {}
    for rel, path in modules():
        name = rel[:-3].replace("/", ".").removesuffix(".__init__")
        package = name if rel.endswith("__init__.py") else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                module = f"{base}.{node.module}" if node.level else node.module
                module = module or base
                targets |= {module} | {f"{module}.{a.name}" for a in node.names}
        edges[name] = set()
        for target in targets:
            while target and target not in names:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    assert not _cycles(edges), f"import cycles through package __init__s: {_cycles(edges)}"


def test_an_import_inside_a_function_says_why():
    silent = []
    for rel, path in modules():
        lines = open(path, encoding="utf-8").read().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        here, above = lines[sub.lineno - 1], lines[sub.lineno - 2]
                        if "#" not in here and not above.strip().startswith("#"):
                            silent.append(f"{rel}:{sub.lineno}")
    assert not silent, f"imports inside functions without a comment: {silent}"


def test_light_modules_import_no_tensorflow():
    code = (
        "import importlib, sys\n"
        f"for name in {LIGHT!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "sys.exit('imported ' + ', '.join(heavy[:3]) if heavy else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_layer_contract_is_kept():
    lint = shutil.which("lint-imports") or os.path.join(
        os.path.dirname(sys.executable), "lint-imports"
    )
    if not os.path.exists(lint):
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


PUBLIC_API = {
    "kerasae/models/registry.py": [
        "register_model",
        "list_models",
        "get_model_class",
        "create_model",
    ],
    "kerasae/models/saving.py": ["load_model"],
    "kerasae/data/sources.py": ["load_dataset"],
    "kerasae/data/pipeline.py": ["make_tf_dataset"],
    "kerasae/export/write.py": ["export_model"],
    "kerasae/export/run.py": ["export_run", "export_layout"],
    "kerasae/runs/training.py": ["train"],
    "kerasae/runs/folder.py": ["load_run"],
    "kerasae/samplers/base.py": ["create_sampler"],
    "kerasae/evaluation/reconstruction.py": ["evaluate"],
    "kerasae/evaluation/likelihood.py": ["log_likelihood"],
    "kerasae/testing/models.py": ["check_model"],
    "kerasae/testing/extensions.py": [
        "check_sampler",
        "check_dataset",
        "check_exporter",
        "check_architecture",
    ],
}


@pytest.mark.parametrize("path", sorted(PUBLIC_API))
def test_the_public_api_has_type_hints(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in PUBLIC_API[path]:
        args = functions[name].args
        params = args.posonlyargs + args.args + args.kwonlyargs
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        bare = [a.arg for a in params if a.annotation is None]
        assert not bare and functions[name].returns is not None, (name, bare)
