from lucid_devstack import settings_doc
from lucid_operator.settings import OperatorSettings


def test_configuration_reference_is_current():
    assert settings_doc.OUTPUT.read_text() == settings_doc.render(), (
        "docs/configuration.md is stale: run python -m lucid_devstack.settings_doc")


def test_every_setting_is_documented():
    text = settings_doc.render()
    for name, field in OperatorSettings.model_fields.items():
        assert field.description, name
        assert f"`LUCID_{name.upper()}`" in text
