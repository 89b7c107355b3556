"""Loading chains: the XML format, every start-up error with its file:line, plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mn.flow import FlowDefinitionError, FlowExtension, load_flows
from mn.flow.extensions import resolve
from tests.support import flow_steps
from tests.support.flow_steps import FLOW_DIR

S = "tests.support.flow_steps"


def write(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def load(*dirs: Path, extensions=()):
    """Only the given directories and extensions: no repository flows, no entry points."""
    return load_flows(dirs, default_dir=None, extensions=resolve(extensions, "test extension"))


def error_of(directory: Path, extensions=()) -> FlowDefinitionError:
    with pytest.raises(FlowDefinitionError) as info:
        load(directory, extensions=extensions)
    return info.value


def test_support_chains_load_and_expand():
    registry = load(FLOW_DIR)
    assert {"test.five", "test.features", "test.tail", "test.durable"} <= set(registry.names)

    five = registry.get("test.five")
    assert [s.cls for s in five.steps] == [flow_steps.StepA, flow_steps.StepB, flow_steps.StepC,
                                            flow_steps.StepD, flow_steps.StepE]
    assert five.handlers == {"done": (flow_steps.JournalDone,), "error": (flow_steps.JournalError,),
                             "finally": (flow_steps.JournalFinally,)}
    assert not five.resumable and registry.get("test.resumable").resumable

    features = registry.get("test.features")
    ids = [s.id for s in features.steps]
    # element 7 is the (empty) insertion point; element 8 the include of test.tail.
    assert ids == [f"1/{S}.StepA", f"2/{S}.StepB", f"3/{S}.StepC", f"4/{S}.SkipStep",
                   f"5/{S}.NoRollbackStep", f"6/{S}.StepD", f"8.1/{S}.StepE"]
    by_class = {s.cls.__name__: s for s in features.steps}
    assert by_class["StepB"].when == ("with_b",)
    assert by_class["StepC"].unless == ("without_c",)
    assert by_class["StepE"].unless == ("without_tail",)  # inherited from <include>
    assert not by_class["NoRollbackStep"].rollbackable  # declared by the class
    assert not by_class["StepD"].rollbackable  # declared by rollback="false"
    assert by_class["StepA"].rollbackable
    assert by_class["StepA"].where == f"{FLOW_DIR / 'features.xml'}:5"
    # A sub-chain brings its steps, not its handlers.
    assert features.handlers == {"done": (), "error": (), "finally": ()}


def test_nested_includes_number_steps_by_path(tmp_path):
    write(tmp_path, "a.xml", f"""
        <chain name="a">
          <step class="{S}:StepA"/>
          <include chain="b" when="x"/>
        </chain>""")
    write(tmp_path, "sub/b.xml", f"""
        <chain name="b">
          <include chain="c"/>
          <step class="{S}:StepB" unless="y"/>
        </chain>""")
    write(tmp_path, "c.xml", f"""
        <chain name="c"><step class="{S}:StepC" when="z"/></chain>""")
    steps = load(tmp_path).get("a").steps
    assert [(s.id, s.when, s.unless) for s in steps] == [
        (f"1/{S}.StepA", (), ()),
        (f"2.1.1/{S}.StepC", ("x", "z"), ()),
        (f"2.2/{S}.StepB", ("x",), ("y",)),
    ]


def test_extension_steps_go_to_their_point_in_order(tmp_path):
    registry = load(FLOW_DIR, extensions=[
        FlowExtension(chain="test.features", point="plugins", step=flow_steps.StepE, order=5),
        FlowExtension(chain="test.features", point="plugins", step=f"{S}:PluginStep", when="plug"),
    ])
    steps = registry.get("test.features").steps
    assert [s.id for s in steps[6:]] == [f"7.1/{S}.PluginStep", f"7.2/{S}.StepE", f"8.1/{S}.StepE"]
    assert steps[6].when == ("plug",)
    assert steps[6].where == "test extension #2"


@pytest.mark.parametrize("body, line, message", [
    ('<chain name="x">\n  <step class="a:B">\n</chain>', 3, "malformed XML: mismatched tag"),
    ("", 1, "malformed XML: no element found"),
    ('<flow name="x"/>', 1, "the root element must be <chain>, not <flow>"),
    ('<chain/>', 1, "<chain> needs a 'name' attribute"),
    ('<chain name="a b"/>', 1, "name='a b' is not a valid name"),
    ('<chain name="x" color="red"/>', 1, "unknown attribute 'color' on <chain>"),
    ('<chain name="x" resumable="yes"/>', 1, "resumable='yes' must be \"true\" or \"false\""),
    ('<chain name="x">\n\n  <steps class="a:B"/>\n</chain>', 3, "unknown element <steps> in <chain>"),
    ('<chain name="x">\n  <step clas="a:B"/>\n</chain>', 2, "unknown attribute 'clas' on <step>"),
    ('<chain name="x">\n  <step/>\n</chain>', 2, "<step> needs a 'class' attribute"),
    ('<chain name="x">\n  hello\n</chain>', 2, "unexpected text 'hello'"),
    ('<chain name="x">\n  <step class="S:StepA"><step class="S:StepB"/></step>\n</chain>', 2,
     "<step> cannot contain <step>"),
    ('<chain name="x">\n  <step class="no_such_module_here:Flow"/>\n</chain>', 2,
     "cannot import module 'no_such_module_here'"),
    ('<chain name="x">\n  <step class="S:Missing"/>\n</chain>', 2, f"module '{S}' has no 'Missing'"),
    ('<chain name="x">\n  <step class="S:NotAStep"/>\n</chain>', 2, "does not subclass mn.flow.Flow"),
    ('<chain name="x">\n  <step class="S:JournalDone"/>\n</chain>', 2, "does not subclass mn.flow.Flow"),
    ('<chain name="x">\n  <step class="mn.flow:Flow"/>\n</chain>', 2, "does not implement run()"),
    ('<chain name="x">\n  <step class="S:FLOW_DIR"/>\n</chain>', 2, "is a PosixPath, not a class"),
    ('<chain name="x">\n  <step class="justaname"/>\n</chain>', 2, "is not a class reference"),
    ('<chain name="x">\n  <step class="S:StepA" when=""/>\n</chain>', 2, "when= needs the name of a data key"),
    ('<chain name="x">\n  <step class="S:NoRollbackStep" rollback="true"/>\n</chain>', 2,
     "declares that it cannot be rolled back"),
    ('<chain name="x">\n  <done class="S:StepA"/>\n</chain>', 2, "does not subclass mn.flow.FlowHandler"),
    ('<chain name="x">\n  <insertion-point name="p"/>\n  <insertion-point name="p"/>\n</chain>', 3,
     "insertion point 'p' is already declared at"),
    ('<chain name="x">\n\n  <include chain="nowhere"/>\n</chain>', 3,
     "no chain is named 'nowhere' (sub-chain of 'x')"),
    ('<chain name="x">\n  <include chain="x"/>\n</chain>', 2, "sub-chain cycle: x -> x"),
])
def test_every_definition_error_names_file_and_line(tmp_path, body, line, message):
    path = write(tmp_path, "bad.xml", body.replace('"S:', f'"{S}:'))
    err = error_of(tmp_path)
    assert err.where == f"{path}:{line}"
    assert str(err).startswith(f"{path}:{line}: ")
    assert message in err.reason


def test_cycle_through_several_files_names_the_closing_include(tmp_path):
    write(tmp_path, "a.xml", '<chain name="a">\n  <include chain="b"/>\n</chain>')
    b = write(tmp_path, "b.xml", f'<chain name="b">\n  <step class="{S}:StepA"/>\n  <include chain="a"/>\n</chain>')
    err = error_of(tmp_path)
    assert err.where == f"{b}:3"
    assert "sub-chain cycle: a -> b -> a" in err.reason


def test_duplicate_chain_name_names_both_files(tmp_path):
    first = write(tmp_path, "a.xml", '<chain name="dup"/>')
    second = write(tmp_path, "b/c.xml", '<!-- the same name -->\n<chain name="dup"/>')
    err = error_of(tmp_path)
    assert err.where == f"{second}:2"
    assert f"chain 'dup' is already defined at {first}:1" in err.reason


def test_missing_flow_directory_is_an_error(tmp_path):
    with pytest.raises(FlowDefinitionError, match="flow directory does not exist"):
        load(tmp_path / "nope")


@pytest.mark.parametrize("extension, message", [
    (FlowExtension(chain="no.such", point="plugins", step=flow_steps.StepA), "no chain is named 'no.such'"),
    (FlowExtension(chain="test.features", point="nope", step=flow_steps.StepA),
     "chain 'test.features' (" + str(FLOW_DIR / "features.xml") + ":4) has no insertion point 'nope'"),
    (FlowExtension(chain="test.features", point="plugins", step=f"{S}:NotAStep"), "does not subclass"),
    (FlowExtension(chain="test.features", point="plugins", step=f"{S}:Gone"), "has no 'Gone'"),
])
def test_bad_extensions_stop_loading(extension, message):
    with pytest.raises(FlowDefinitionError) as info:
        load(FLOW_DIR, extensions=[extension])
    assert info.value.where == "test extension #1"
    assert message in info.value.reason


def test_repository_flows_load_with_installed_plugins():
    """What every MN does at start-up: the repository's flows/ and the entry points."""
    registry = load_flows()
    for name in registry.names:
        assert registry.get(name).name == name


def test_plugin_step_from_a_real_entry_point(tmp_path, monkeypatch):
    flow_steps.write_plugin_distribution(
        tmp_path, {"features-audit": "tests.support.flow_steps:FEATURES_PLUGIN"})
    monkeypatch.syspath_prepend(str(tmp_path))
    steps = load_flows([FLOW_DIR], default_dir=None).get("test.features").steps
    plugin = [s for s in steps if s.cls is flow_steps.PluginStep]
    assert [s.id for s in plugin] == [f"7.1/{S}.PluginStep"]
    assert plugin[0].where == ("entry point features-audit = tests.support.flow_steps:FEATURES_PLUGIN "
                               "(zstack.flow_extensions)")


def test_entry_point_naming_an_unknown_chain_stops_loading(tmp_path, monkeypatch):
    # The durable plugin targets test.durable, which is not loaded here.
    flow_steps.write_plugin_distribution(tmp_path, {"durable": "tests.support.flow_steps:DURABLE_PLUGIN"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FlowDefinitionError) as info:
        load_flows([], default_dir=None)
    assert info.value.where.startswith("entry point durable = tests.support.flow_steps:DURABLE_PLUGIN")
    assert "no chain is named 'test.durable'" in info.value.reason


def test_entry_point_that_does_not_load(tmp_path, monkeypatch):
    flow_steps.write_plugin_distribution(tmp_path, {"broken": "tests.support.flow_steps:NO_SUCH_THING"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FlowDefinitionError, match="entry point broken .*: cannot load: AttributeError"):
        load_flows([FLOW_DIR], default_dir=None)
