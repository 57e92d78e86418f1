"""kazoo (Python) authenticating with SASL through pure-sasl. Usage:
kazoo_sasl.py HOST:PORT USER PASSWORD [MECHANISM]. MECHANISM is DIGEST-MD5 (the default) or
GSSAPI: Kerberos, with the ticket in $KRB5CCNAME (PASSWORD is then ignored and USER is the
sasl id the server should give, such as alice@EXAMPLE.COM; HOST must be the name in the
service principal, zookeeper/HOST). Prints lines crates/cli/tests/sasl.rs and kerberos.rs
compare between ZooKeeper and corral: AUTHFAILED, or CONNECTED and how the sasl ACL scheme
behaves."""
import logging
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_acl

logging.basicConfig(level=logging.CRITICAL)
hosts, user, password = sys.argv[1:4]
mechanism = sys.argv[4] if len(sys.argv) > 4 else "DIGEST-MD5"
if mechanism == "GSSAPI":
    sasl = {"mechanism": "GSSAPI"}
else:
    sasl = {"mechanism": mechanism, "username": user, "password": password}
zk = KazooClient(hosts=hosts, timeout=10, sasl_options=sasl,
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
    path = f"/kazoo-{user.split('@')[0]}"
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
