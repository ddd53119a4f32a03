"""mailhost - the machine as a mail server: sending through its Postfix,
waiting for its queue, its local mailboxes, its failed units. Shared by
test_install.py (machine setup, harness) and scenario.py."""
import time

import machine as M

HOSTNAME = "mail.sender.test"
MAILBOX_USER = "reports"                 # the rua's local mailbox
REPO_IN_MACHINE = "/srv/tlsrptd-repo"    # the local apt repository on its disk


def queue_empty(m):
    r = m.run(["postqueue", "-p"], check=False)
    return "Mail queue is empty" in r.stdout


def send(m, rcpt, subject):
    msg = "From: root@%s\nTo: %s\nSubject: %s\n\nInstall test.\n" % (HOSTNAME, rcpt, subject)
    m.run(["/usr/sbin/sendmail", "-i", "-f", "root@" + HOSTNAME, "--", rcpt], input=msg)


def wait_queue_empty(m, timeout=90):
    deadline = time.monotonic() + timeout
    while not queue_empty(m):
        if time.monotonic() > deadline:
            raise M.MachineError("mail still queued after %d s:\n%s" % (
                timeout, m.run(["postqueue", "-p"], check=False).stdout))
        time.sleep(0.3)


def deliver_round(m, world, rcpts, label):
    """Send one message to each rcpt (one at a time: one session each) and
    wait until the MX servers have them."""
    before = len(world.delivered())
    for r in rcpts:
        n = len(world.delivered())
        send(m, r, "%s to %s" % (label, r))
        deadline = time.monotonic() + 60
        while len(world.delivered()) == n:
            if time.monotonic() > deadline:
                raise M.MachineError("%s: no delivery to %s within 60 s; queue:\n%s" % (
                    label, r, m.run(["postqueue", "-p"], check=False).stdout))
            time.sleep(0.2)
    wait_queue_empty(m)
    return world.delivered()[before:]


def mailbox(m, user=MAILBOX_USER):
    r = m.run(["cat", "/var/mail/" + user], check=False)
    return r.stdout if r.returncode == 0 else ""


def failed_units(m):
    r = m.run(["systemctl", "--failed", "--plain", "--no-legend", "--no-pager"], check=False)
    return [l for l in r.stdout.splitlines() if l.strip()]


