"""terminal: a real shell in an xterm: commands typed, `ls -lR /usr`, `top`, `less` paging."""

from __future__ import annotations

import time

from lucid_devstack.workloads.base import DriveResult, Workload, hold

TITLE = "lucid-shell"
PAGED_FILE = "/usr/share/common-licenses/GPL-3"
SHORT_COMMANDS = ("uname -a", "df -h", "ps aux --sort=-%cpu | head -n 15",
                  "cat /etc/os-release", "ls -la /etc | head -n 30", "free -m")
# One cycle: a share of the cycle per phase. A 2-minute run does two cycles; a short
# one (a test) does one, shortened in proportion.
CYCLE_S = 60.0
PHASES = (("commands", 0.15), ("ls", 0.25), ("top", 0.25), ("less", 0.35))


class Terminal(Workload):
    name = "terminal"

    def setup(self) -> None:
        env = {"PS1": "user@lucid:\\w\\$ ", "HOME": str(self.workdir), "TERM": "xterm",
               "LANG": "C.UTF-8", "HISTFILE": "/dev/null"}
        # A big terminal, as people use them; bash without rc files, so the prompt and
        # aliases are the same on every machine.
        self.launch("xterm", ["xterm", "-title", TITLE, "-geometry", "110x42+10+10",
                              "-e", "bash", "--noprofile", "--norc", "-i"], env=env)
        self.wait_window("xterm", "--name", f"^{TITLE}$")
        self.command("clear")

    def command(self, text: str) -> None:
        self.type_into(self.windows["xterm"], text)
        self.key(self.windows["xterm"], "Return")

    def drive(self, seconds: float) -> DriveResult:
        deadline = time.monotonic() + seconds
        cycle = min(CYCLE_S, seconds)
        counts = {"commands": 0, "pages": 0, "cycles": 0}
        window = self.windows["xterm"]
        while time.monotonic() < deadline:
            for phase, share in PHASES:
                end = min(deadline, time.monotonic() + share * cycle)
                if phase == "commands":
                    index = 0
                    while time.monotonic() < end:
                        self.command(SHORT_COMMANDS[index % len(SHORT_COMMANDS)])
                        counts["commands"] += 1
                        index += 1
                        hold(end, 0.8)
                elif phase == "ls":
                    self.command("ls -lR /usr")
                    counts["commands"] += 1
                    hold(end, end - time.monotonic())
                    # Still listing, most likely: interrupt it as a user would.
                    self.key(window, "ctrl+c")
                    self.command("clear")
                elif phase == "top":
                    self.command("top -d 1")
                    counts["commands"] += 1
                    hold(end, end - time.monotonic())
                    self.key(window, "q")
                else:
                    self.command(f"less {PAGED_FILE}")
                    counts["commands"] += 1
                    page = 0
                    while time.monotonic() < end:
                        # Mostly forward, now and then back, and a search, as one reads.
                        page += 1
                        if page % 7 == 0:
                            self.key(window, "b")
                        elif page % 11 == 0:
                            self.type_into(window, "/License")
                            self.key(window, "Return")
                        else:
                            self.key(window, "space")
                        counts["pages"] += 1
                        hold(end, 0.5)
                    self.key(window, "q")
                    self.command("clear")
                if time.monotonic() >= deadline:
                    break
            counts["cycles"] += 1
        self.check_running()
        return DriveResult(self.name, seconds, counts["commands"] + counts["pages"], counts)
