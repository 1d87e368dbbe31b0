"""Every external command the devstack and the tests run is installed (by the bootstrap)."""

from lucid_devstack.host_commands import missing_commands, packages_needed, report
from lucid_devstack.versions import APT_PACKAGES, COMMANDS


def test_every_command_the_stack_runs_is_on_path():
    missing = missing_commands()
    assert not missing, report(missing)


def test_every_commands_package_is_installed_by_the_bootstrap():
    assert set(COMMANDS.values()) <= set(APT_PACKAGES)


def test_a_missing_command_is_named_with_its_package():
    missing = missing_commands({"vncpasswd": "tigervnc-tools", "sh": "dash"}, path="/nonexistent")
    text = report(missing)
    assert "vncpasswd  (Debian package tigervnc-tools)" in text
    assert "apt-get install --no-install-recommends dash tigervnc-tools" in text


def test_only_packages_of_missing_commands_are_installed():
    # sh is everywhere; a command that is on PATH from elsewhere needs no package.
    assert packages_needed({"sh": "dash", "no-such-command-here": "pkg-a",
                            "also-missing": "pkg-a"}) == ["pkg-a", "python3-venv"]


def test_the_bootstrap_packages_that_ship_no_command_are_always_considered():
    # python3-venv has no command of its own; a fresh Debian lacks it and `venv` fails.
    assert "python3-venv" in packages_needed({})
