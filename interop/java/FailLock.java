import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.data.Stat;

/**
 * Shared body of FailLockDrop and FailLockRestart: a Curator client holds an InterProcessMutex
 * while another waits for it; the holder loses its connection (proxy cut, or server restart) for
 * less than its session timeout. It must reconnect to the same session (RECONNECTED, never LOST),
 * keep the lock, its ephemeral and its data, and the waiter must not get the lock until the
 * holder releases it.
 */
final class FailLock {
    private FailLock() {}

    static void body(boolean restart) throws Exception {
        Proxy proxy = new Proxy(Check.connect);
        CuratorFramework a = Check.curator(proxy.connectString(), 30_000);
        CuratorFramework b = Check.curator(Check.connect, 30_000);
        List<ConnectionState> states = new CopyOnWriteArrayList<>();
        a.getConnectionStateListenable().addListener((c, s) -> states.add(s));
        long sid = a.getZookeeperClient().getZooKeeper().getSessionId();
        AtomicBoolean aHolds = new AtomicBoolean();
        AtomicBoolean bGotItWhileAHeld = new AtomicBoolean();
        AtomicBoolean bAcquired = new AtomicBoolean();

        Check.step("holder takes the lock, a waiter queues", () -> {
            InterProcessMutex ma = new InterProcessMutex(a, "/fail/lock");
            Check.that(ma.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "holder acquires");
            aHolds.set(true);
            a.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath("/fail/eph", "e".getBytes());
            a.create().forPath("/fail/data", "before".getBytes());
            Thread waiter = new Thread(() -> {
                try {
                    InterProcessMutex mb = new InterProcessMutex(b, "/fail/lock");
                    if (mb.acquire(4 * Check.WAIT_MS, TimeUnit.MILLISECONDS)) {
                        if (aHolds.get()) {
                            bGotItWhileAHeld.set(true);
                        }
                        bAcquired.set(true);
                        mb.release();
                    }
                } catch (Exception e) {
                    Check.log("waiter: %s", e);
                }
            }, "waiter");
            waiter.setDaemon(true);
            waiter.start();
            Check.await("the waiter queues", () -> {
                try {
                    return ma.getParticipantNodes().size() == 2;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });

            if (restart) {
                proxy.block();
                Check.action("restart");
                Thread.sleep(500);
                proxy.unblock();
            } else {
                proxy.block();
                Thread.sleep(2_000);
                proxy.unblock();
            }
            Check.await("holder reconnects", () -> states.contains(ConnectionState.RECONNECTED));
            Check.that(states.contains(ConnectionState.SUSPENDED), "holder never saw SUSPENDED: %s", states);
            Check.that(!states.contains(ConnectionState.LOST), "holder's session was lost: %s", states);
            Check.eq(sid, a.getZookeeperClient().getZooKeeper().getSessionId(), "session id after reconnect");

            Stat st = b.checkExists().forPath("/fail/eph");
            Check.that(st != null, "the holder's ephemeral is gone");
            Check.eq(sid, st.getEphemeralOwner(), "ephemeral owner");
            Check.eq("before", new String(b.getData().forPath("/fail/data")), "data written before the outage");
            Check.that(!bAcquired.get(), "the waiter got the lock during the outage");
            Check.that(ma.isAcquiredInThisProcess(), "the holder no longer holds the lock");
            Check.eq(2, ma.getParticipantNodes().size(), "lock nodes after reconnect");
            a.setData().forPath("/fail/data", "after".getBytes());
            aHolds.set(false);
            ma.release();
            Check.await("the waiter gets the lock after the release", bAcquired::get);
            Check.that(!bGotItWhileAHeld.get(), "the waiter held the lock while the holder did");
            Check.eq("after", new String(b.getData().forPath("/fail/data")), "data written after the outage");
        });
        proxy.close();
    }
}
