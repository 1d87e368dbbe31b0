"""The desktop's display pick skips displays another network-namespace sharer holds."""

from pathlib import Path

from lucid_devstack.desktop import XVNC_FIRST_DISPLAY, abstract_x_displays, free_display

PROC_NET_UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 81234 @/tmp/.X11-unix/X50
0000000000000000: 00000002 00000000 00010000 0001 01 81235 /tmp/.X11-unix/X50
0000000000000000: 00000002 00000000 00010000 0001 01 81236 @/tmp/.X11-unix/X51
0000000000000000: 00000003 00000000 00000000 0001 03 81237 @/tmp/.ICE-unix/77
0000000000000000: 00000003 00000000 00000000 0001 03 81238
"""


def test_abstract_x_sockets_are_read_from_proc_net_unix():
    assert abstract_x_displays(PROC_NET_UNIX) == {50, 51}
    assert abstract_x_displays("") == set()


def test_free_display_skips_a_display_held_only_by_an_abstract_socket(tmp_path: Path):
    # As a container with its own /tmp on the host network sees it: no file, a live socket.
    unix = tmp_path / "unix"
    unix.write_text(PROC_NET_UNIX)
    number = free_display(unix)
    assert number >= XVNC_FIRST_DISPLAY and number not in {50, 51}
