import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;

/** Clients created while the server is down connect once it is started, and work. */
public final class FailStopped {
    public static void main(String[] args) {
        Check.run(args, () -> {
            Check.action("stop");
            Check.Events ev = new Check.Events("raw");
            ZooKeeper z = new ZooKeeper(Check.connect, 15_000, ev);
            CuratorFramework c = CuratorFrameworkFactory.builder().connectString(Check.connect).sessionTimeoutMs(15_000)
                    .connectionTimeoutMs(5_000).retryPolicy(new RetryNTimes(100, 200)).build();
            c.start();
            try {
                Check.step("while the server is stopped", () -> {
                    Check.raises(KeeperException.ConnectionLossException.class, "a call without a server",
                            () -> z.exists("/", false));
                    Check.that(!c.blockUntilConnected(1, TimeUnit.SECONDS), "Curator connected to a stopped server");
                });
                Check.action("start");
                Check.step("after the server started", () -> {
                    ev.awaitState(Watcher.Event.KeeperState.SyncConnected);
                    z.create("/started", "x".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                    Check.that(c.blockUntilConnected((int) Check.WAIT_MS, TimeUnit.MILLISECONDS), "Curator connects");
                    Check.eq("x", new String(c.getData().forPath("/started")), "Curator reads the raw client's node");
                });
            } finally {
                c.close();
                z.close();
            }
        });
    }
}
