import static org.apache.zookeeper.Watcher.Event.EventType.NodeChildrenChanged;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeCreated;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeDataChanged;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeDeleted;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;

/**
 * Shared body of FailWatchesDrop and FailWatchesRestart: a client with data, exist, child and
 * persistent recursive watches is disconnected while another client changes the watched nodes;
 * on reconnect the Java client re-registers its watches (SetWatches/SetWatches2 with its last
 * zxid) and must get exactly the events it missed, then keep its untriggered watches. 1,500
 * watches with long paths make the client send several SetWatches packets.
 */
final class FailWatches {
    private FailWatches() {}

    static final int MANY = 1500;
    static final String PAD = "p".repeat(100);

    static String many(int i) {
        return "/w/many/" + PAD + i;
    }

    static void body(boolean restart) throws Exception {
        Proxy proxy = new Proxy(Check.connect);
        Check.Events ev = new Check.Events("watcher");
        ZooKeeper a = Check.zk(proxy.connectString(), 30_000, ev);
        Check.Events evb = new Check.Events("writer");
        ZooKeeper b = Check.zk(Check.connect, 30_000, evb);
        long sid = a.getSessionId();

        Check.step("watches set, connection lost, nodes changed meanwhile", () -> {
            for (String p : new String[] {"/w", "/w/data", "/w/kids", "/w/gone", "/w/later", "/w/rec"}) {
                b.create(p, "0".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            }
            a.getData("/w/data", true, null);
            Check.that(a.exists("/w/new", true) == null, "/w/new absent");
            a.getChildren("/w/kids", true);
            a.getData("/w/gone", true, null);
            a.getData("/w/later", true, null);
            // Enough watches with long paths that the client re-registers them in several
            // SetWatches packets (the Java client splits them at 128 KiB).
            b.create("/w/many", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            for (int batch = 0; batch < MANY / 100; batch++) {
                List<Op> ops = new ArrayList<>();
                for (int i = batch * 100; i < (batch + 1) * 100; i++) {
                    ops.add(Op.create(many(i), null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
                }
                b.multi(ops);
            }
            for (int i = 0; i < MANY; i++) {
                a.getData(many(i), true, null);
            }
            Check.Events rec = new Check.Events("recursive");
            a.addWatch("/w/rec", rec, AddWatchMode.PERSISTENT_RECURSIVE);

            proxy.block();
            ev.awaitState(Watcher.Event.KeeperState.Disconnected);
            if (restart) {
                Check.action("restart");
            }
            Check.retry("setData", () -> b.setData("/w/data", "1".getBytes(), -1));
            Check.retry("create", () -> b.create("/w/new", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
            Check.retry("create child", () -> b.create("/w/kids/k", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
            Check.retry("delete", () -> b.delete("/w/gone", -1));
            for (int batch = 0; batch < MANY / 100; batch++) {
                List<Op> ops = new ArrayList<>();
                for (int i = batch * 100; i < (batch + 1) * 100; i++) {
                    ops.add(Op.setData(many(i), "x".getBytes(), -1));
                }
                Check.retry("multi setData", () -> b.multi(ops));
            }
            proxy.unblock();
            ev.awaitState(Watcher.Event.KeeperState.SyncConnected);
            Check.eq(sid, a.getSessionId(), "session id after reconnect");

            Set<String> got = new TreeSet<>();
            for (int i = 0; i < 4 + MANY; i++) {
                WatchedEvent e = ev.next();
                got.add(e.getType() + " " + e.getPath());
            }
            Set<String> want = new TreeSet<>(Set.of(NodeDataChanged + " /w/data", NodeCreated + " /w/new",
                    NodeChildrenChanged + " /w/kids", NodeDeleted + " /w/gone"));
            for (int i = 0; i < MANY; i++) {
                want.add(NodeDataChanged + " " + many(i));
            }
            Check.eq(want, got, "events for the changes missed while disconnected");

            b.setData("/w/later", "1".getBytes(), -1);
            ev.expect(NodeDataChanged, "/w/later");
            b.create("/w/rec/x", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            rec.expect(NodeCreated, "/w/rec/x");
            b.setData("/w/data", "2".getBytes(), -1); // its watch fired already: no event
            b.setData("/w/rec", "m".getBytes(), -1);
            rec.expect(NodeDataChanged, "/w/rec");
            ev.expectNoneQueued();
        });
        proxy.close();
    }
}
