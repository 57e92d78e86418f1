import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * Session expiry with real clients: the server expires the session of a Curator client that holds
 * a lock, leadership and an ephemeral node. Curator must report LOST, the other contender must get
 * the lock and leadership, the ephemeral must be gone, and the client must come back with a new
 * session. A raw ZooKeeper client sees Expired and SessionExpiredException.
 */
public final class FailExpiry {
    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework a = Check.curator();
            CuratorFramework b = Check.curator();
            List<ConnectionState> states = new CopyOnWriteArrayList<>();
            a.getConnectionStateListenable().addListener((c, s) -> states.add(s));

            Check.step("expired holder releases lock, leadership and ephemerals", () -> {
                long sid = a.getZookeeperClient().getZooKeeper().getSessionId();
                InterProcessMutex ma = new InterProcessMutex(a, "/exp/lock");
                Check.that(ma.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "a acquires");
                LeaderLatch la = new LeaderLatch(a, "/exp/leader", "a");
                la.start();
                Check.that(la.await(Check.WAIT_MS, TimeUnit.MILLISECONDS), "a leads");
                LeaderLatch lb = new LeaderLatch(b, "/exp/leader", "b");
                lb.start();
                a.create().withMode(CreateMode.EPHEMERAL).forPath("/exp/eph-a");
                AtomicBoolean bAcquired = new AtomicBoolean();
                Thread waiter = new Thread(() -> {
                    try {
                        InterProcessMutex mb = new InterProcessMutex(b, "/exp/lock");
                        if (mb.acquire(4 * Check.WAIT_MS, TimeUnit.MILLISECONDS)) {
                            bAcquired.set(true);
                        }
                    } catch (Exception e) {
                        Check.log("waiter: %s", e);
                    }
                }, "waiter");
                waiter.setDaemon(true);
                waiter.start();
                Check.await("b queues for the lock", () -> {
                    try {
                        return ma.getParticipantNodes().size() == 2;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                Check.that(!lb.hasLeadership() && !bAcquired.get(), "b got ahead of a");

                Check.killSession(a);
                Check.await("Curator reports LOST", () -> states.contains(ConnectionState.LOST));
                Check.await("b gets the lock", bAcquired::get);
                Check.await("b becomes leader", lb::hasLeadership);
                Check.await("a is no longer leader", () -> !la.hasLeadership());
                Check.that(b.checkExists().forPath("/exp/eph-a") == null, "a's ephemeral outlived its session");
                Check.await("a reconnects with a new session", () -> {
                    try {
                        return states.lastIndexOf(ConnectionState.RECONNECTED) > states.indexOf(ConnectionState.LOST)
                                && a.getZookeeperClient().getZooKeeper().getSessionId() != sid;
                    } catch (Exception e) {
                        return false;
                    }
                });
                a.create().withMode(CreateMode.EPHEMERAL).forPath("/exp/eph-a2");
                Check.eq(a.getZookeeperClient().getZooKeeper().getSessionId(),
                        b.checkExists().forPath("/exp/eph-a2").getEphemeralOwner(), "new session owns new ephemerals");
                la.close();
                lb.close();
            });

            Check.step("raw client: Expired event, then SessionExpiredException", () -> {
                Check.Events ev = new Check.Events("raw");
                ZooKeeper z = Check.zk(ev);
                z.create("/exp/raw", null, org.apache.zookeeper.ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
                Check.killSession(z);
                ev.awaitState(Watcher.Event.KeeperState.Expired);
                Check.raises(KeeperException.SessionExpiredException.class, "a call on an expired session",
                        () -> z.exists("/exp", false));
                Check.that(b.checkExists().forPath("/exp/raw") == null, "raw client's ephemeral outlived its session");
                Check.Events ev2 = new Check.Events("bad password");
                ZooKeeper bad = new ZooKeeper(Check.connect, 15_000, ev2, b.getZookeeperClient().getZooKeeper().getSessionId(),
                        new byte[16]);
                try {
                    ev2.awaitState(Watcher.Event.KeeperState.Expired);
                } finally {
                    bad.close();
                }
                Check.that(b.checkExists().forPath("/exp") != null, "b still works after a bad-password resume");
            });
        });
    }
}
