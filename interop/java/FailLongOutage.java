import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

/**
 * Session time is server time: the server is down for twice a client's session timeout, and when
 * it is back the client reconnects to the same session, its ephemeral still there. (ZooKeeper
 * restores sessions from its data and gives each a fresh timeout at start-up.)
 */
public final class FailLongOutage {
    public static void main(String[] args) {
        Check.run(args, () -> {
            Check.Events ev = new Check.Events("client");
            ZooKeeper z = Check.zk(Check.connect, 4_000, ev);
            long sid = z.getSessionId();
            Check.step("a 4 s session outlives an 8 s outage", () -> {
                Check.eq(4_000, z.getSessionTimeout(), "negotiated timeout");
                z.create("/lo", "d".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                z.create("/lo/eph", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
                Check.action("stop");
                ev.awaitState(Watcher.Event.KeeperState.Disconnected);
                Thread.sleep(8_000);
                Check.action("start");
                long end = System.nanoTime() + Check.WAIT_MS * 1_000_000L;
                while (ev.state != Watcher.Event.KeeperState.SyncConnected) {
                    Check.that(ev.state != Watcher.Event.KeeperState.Expired,
                            "the session expired during the outage (server down longer than its timeout)");
                    Check.that(System.nanoTime() < end, "no reconnect (state %s)", ev.state);
                    Thread.sleep(20);
                }
                Check.eq(sid, z.getSessionId(), "session id");
                Stat st = z.exists("/lo/eph", false);
                Check.that(st != null, "the ephemeral is gone");
                Check.eq(sid, st.getEphemeralOwner(), "ephemeral owner");
            });
        });
    }
}
