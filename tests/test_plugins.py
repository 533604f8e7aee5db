import pytest

from mmea_bench import api
from mmea_bench.errors import PluginError, UserError
from mmea_bench.hookspecs import hookimpl
from mmea_bench.plugins import PluginManager, plugin_manager
from tests.conftest import TINY_SPEC
from tests.example_plugins import DegreePlugin


def test_a_plugin_defined_here_adds_a_component_and_a_method_that_runs(register_plugin, tracking_uri, experiment):
    register_plugin(DegreePlugin(), "degree-plugin")
    assert plugin_manager.registry("encoder").get("degree").plugin == "degree-plugin"
    result = api.run(["degree-align"], [TINY_SPEC], [0.3], tracking_uri=tracking_uri, experiment=experiment)
    (record,) = result.runs
    assert record.status == "FINISHED"
    assert record.outcome.modalities == ["structure", "degree", "attribute"]
    assert 0 <= record.outcome.test["test_csls_hits_at_1"] <= 1


def test_a_duplicate_name_is_an_error_naming_both_plugins(register_plugin):
    class Twin:
        @hookimpl
        def register_losses(self, register):
            register("margin", object)

    register_plugin(Twin(), "twin-plugin")
    with pytest.raises(
        PluginError,
        match="loss 'margin' is registered twice: by plugin 'core.components.losses' and by plugin 'twin-plugin'",
    ):
        plugin_manager.registry("loss")


def test_a_plugin_that_raises_is_named_in_the_error(register_plugin):
    class Broken:
        @hookimpl
        def register_fusions(self, register):
            raise RuntimeError("missing weights file")

    register_plugin(Broken(), "broken-plugin")
    with pytest.raises(
        PluginError, match="plugin 'broken-plugin' failed in register_fusions: RuntimeError: missing weights file"
    ):
        plugin_manager.registry("fusion")


def test_unknown_names_list_what_exists_with_a_suggestion():
    with pytest.raises(UserError, match="unknown method 'gcn-alin'. Did you mean 'gcn-align'"):
        plugin_manager.registry("method").get("gcn-alin")


def test_built_in_methods_arrive_through_entry_points_and_can_be_restricted(monkeypatch):
    assert plugin_manager.registry("method").get("gcn-align").plugin == "gcn-align"
    monkeypatch.setenv("MMEA_BENCH_PLUGINS", "")
    restricted = PluginManager()
    assert "gcn-align" not in restricted.registry("method")
    assert "gcn" in restricted.registry("encoder")


def test_plugins_lists_contributions_by_kind():
    contributions = plugin_manager.plugins()
    assert contributions["gcn-align"] == {"method": ["gcn-align"]}
    assert "margin" in contributions["core.components.losses"]["loss"]


def test_an_unknown_plugin_name_in_the_environment_is_an_error(monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_PLUGINS", "gcn-align,mcleaa")
    with pytest.raises(PluginError, match="MMEA_BENCH_PLUGINS: unknown plugin 'mcleaa'. Did you mean 'mclea'"):
        PluginManager().registry("method")


def installed_distribution(folder, name: str, entry_points: str) -> None:
    """Metadata of an installed distribution ``name`` declaring ``entry_points`` (entry_points.txt syntax)."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_two_packages_declaring_one_plugin_name_is_an_error(tmp_path, monkeypatch):
    installed_distribution(tmp_path, "first-plugins", "[mmea_bench]\ntwin = first_plugins.twin\n")
    installed_distribution(tmp_path, "second-plugins", "[mmea_bench]\ntwin = second_plugins.twin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="plugin name 'twin' is declared twice") as error:
        PluginManager().registry("method")
    assert "first-plugins (first_plugins.twin)" in str(error.value)
    assert "second-plugins (second_plugins.twin)" in str(error.value)
    assert "\n" not in str(error.value)
