"""kazoo (Python) authenticating with SASL DIGEST-MD5 through pure-sasl. Usage:
kazoo_sasl.py HOST:PORT USER PASSWORD. Prints lines crates/cli/tests/sasl.rs compares between
ZooKeeper and corral: AUTHFAILED, or CONNECTED and how the sasl ACL scheme behaves."""
import logging
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl

logging.basicConfig(level=logging.CRITICAL)
hosts, user, password = sys.argv[1:4]
zk = KazooClient(hosts=hosts, timeout=10,
                 sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password},
                 connection_retry={"max_tries": 1}, command_retry={"max_tries": 0})
try:
    zk.start(timeout=10)
except AuthFailedError as e:
    print("AUTHFAILED")
    sys.exit(0)
except Exception as e:  # noqa: BLE001 - reported for the comparison
    print(f"NOCONNECT {type(e).__name__}")
    sys.exit(0)
print("CONNECTED")
try:
    path = f"/kazoo-{user}"
    zk.create(path, b"for " + user.encode(), acl=[make_acl("sasl", user, all=True)])
    print("READ", zk.get(path)[0].decode())
    print("ACL", [(a.id.scheme, a.id.id, a.perms) for a in zk.get_acls(path)[0]])
    zk.create("/kazoo-other", b"", acl=[make_acl("sasl", "alice", all=True)])
    try:
        zk.get("/kazoo-other")
        print("OTHER readable")
    except NoAuthError:
        print("OTHER NOAUTH")
except AuthFailedError:
    # kazoo reports a failed SASL exchange on the first request after start().
    print("AUTHFAILED")
zk.stop()
zk.close()
