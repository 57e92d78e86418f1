import static org.apache.zookeeper.Watcher.Event.EventType.NodeChildrenChanged;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeCreated;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeDataChanged;
import static org.apache.zookeeper.Watcher.Event.EventType.NodeDeleted;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.KeeperException.Code;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooDefs.Perms;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

/** The ZooKeeper 3.8 Java client API end to end: CRUD, stats, node types, ACLs, watches, multi, async. */
public final class ZkApi {
    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            Check.Events ev = new Check.Events("a");
            ZooKeeper a = Check.zk(ev);
            Check.Events evb = new Check.Events("b");
            ZooKeeper bz = Check.zk(evb);

            Check.step("create, get, set, stat, versions", () -> {
                String p = a.create("/api", b("hello"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.eq("/api", p, "create returns the path");
                Stat st = new Stat();
                Check.eq("hello", s(a.getData("/api", false, st)), "data");
                Check.eq(0, st.getVersion(), "version");
                Check.eq(5, st.getDataLength(), "dataLength");
                Check.eq(0, st.getNumChildren(), "numChildren");
                Check.eq(0L, st.getEphemeralOwner(), "ephemeralOwner");
                Check.eq(st.getCzxid(), st.getMzxid(), "czxid == mzxid for a new node");
                Check.eq(st.getCzxid(), st.getPzxid(), "pzxid of a new node");
                Stat st2 = a.setData("/api", b("v1"), 0);
                Check.eq(1, st2.getVersion(), "version after set");
                Check.that(st2.getMzxid() > st.getMzxid(), "mzxid grows");
                Check.eq(st.getCtime(), st2.getCtime(), "ctime unchanged");
                KeeperException e = Check.raises(KeeperException.class, "set with a stale version",
                        () -> a.setData("/api", b("v2"), 0));
                Check.eq(Code.BADVERSION, e.code(), "stale set");
                Check.eq(2, a.setData("/api", b("v2"), -1).getVersion(), "unconditional set");
                Check.eq(2, a.exists("/api", false).getVersion(), "exists stat");
                Check.that(a.exists("/nope", false) == null, "exists on a missing node is null");
                Check.eq(Code.NONODE, Check.raises(KeeperException.class, "get missing",
                        () -> a.getData("/nope", false, null)).code(), "get missing");
                Check.eq(Code.NODEEXISTS, Check.raises(KeeperException.class, "create twice",
                        () -> a.create("/api", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)).code(),
                        "create twice");
                Check.eq(Code.NONODE, Check.raises(KeeperException.class, "create without parent",
                        () -> a.create("/no/child", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)).code(),
                        "create without parent");
                a.create("/api/c1", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.eq(Code.NOTEMPTY, Check.raises(KeeperException.class, "delete non-empty",
                        () -> a.delete("/api", -1)).code(), "delete non-empty");
                Check.eq(Code.BADVERSION, Check.raises(KeeperException.class, "delete bad version",
                        () -> a.delete("/api/c1", 7)).code(), "delete with a bad version");
                a.delete("/api/c1", 0);
                Check.that(a.exists("/api/c1", false) == null, "deleted");
            });

            Check.step("session timeout negotiated within [2, 20] ticks; canBeReadOnly client", () -> {
                Check.eq(15_000, a.getSessionTimeout(), "negotiated session timeout");
                Check.eq(40_000, Check.zk(Check.connect, 100_000, new Check.Events("long")).getSessionTimeout(),
                        "a 100 s request is capped at maxSessionTimeout (20 ticks)");
                Check.eq(4_000, Check.zk(Check.connect, 1_000, new Check.Events("short")).getSessionTimeout(),
                        "a 1 s request is raised to minSessionTimeout (2 ticks)");
                Check.Events ro = new Check.Events("read-only capable");
                ZooKeeper r = new ZooKeeper(Check.connect, 15_000, ro, true);
                try {
                    ro.awaitState(Watcher.Event.KeeperState.SyncConnected);
                    r.create("/rw-ok", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
                } finally {
                    r.close();
                }
            });

            Check.step("children, cversion, pzxid, getAllChildrenNumber", () -> {
                for (String k : new String[] {"k3", "k1", "k2"}) {
                    a.create("/api/" + k, b(k), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                }
                Stat st = new Stat();
                List<String> kids = new ArrayList<>(a.getChildren("/api", false, st));
                Collections.sort(kids);
                Check.eq(Arrays.asList("k1", "k2", "k3"), kids, "children");
                Check.eq(3, st.getNumChildren(), "numChildren");
                Check.eq(5, st.getCversion(), "cversion after 4 creates and 1 delete");
                Check.eq(a.exists("/api/k2", false).getCzxid(), st.getPzxid(), "pzxid = last child change");
                Check.eq(3, a.getAllChildrenNumber("/api"), "getAllChildrenNumber");
                List<String> zk = a.getChildren("/zookeeper", false);
                Check.that(zk.contains("quota"), "/zookeeper has quota: %s", zk);
            });

            Check.step("ephemeral nodes", () -> {
                a.create("/api/eph", b("e"), Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
                Check.eq(a.getSessionId(), a.exists("/api/eph", false).getEphemeralOwner(), "ephemeralOwner");
                Check.that(a.getEphemerals("/api").contains("/api/eph"), "getEphemerals: %s", a.getEphemerals("/api"));
                Check.eq(Code.NOCHILDRENFOREPHEMERALS, Check.raises(KeeperException.class, "child of ephemeral",
                        () -> a.create("/api/eph/x", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)).code(),
                        "child of an ephemeral");
                Check.Events evc = new Check.Events("c");
                ZooKeeper c = Check.zk(evc);
                c.create("/api/eph2", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
                Check.that(bz.exists("/api/eph2", true) != null, "b sees c's ephemeral");
                c.close();
                evb.expect(NodeDeleted, "/api/eph2");
                Check.that(bz.exists("/api/eph2", false) == null, "ephemeral gone with its session");
            });

            Check.step("sequential nodes", () -> {
                a.create("/api/seq", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                for (int i = 0; i < 5; i++) {
                    Check.eq(String.format("/api/seq/n-%010d", i),
                            a.create("/api/seq/n-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                            "sequential name");
                }
                Check.eq("/api/seq/e-0000000005",
                        a.create("/api/seq/e-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL),
                        "ephemeral sequential continues the parent's counter");
                a.delete("/api/seq/n-0000000000", -1);
                Check.eq("/api/seq/0000000006",
                        a.create("/api/seq/", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                        "sequence number after a delete (ZooKeeper 3.8.0's figure)");
            });

            Check.step("container and TTL nodes", () -> {
                a.create("/api/cont", null, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
                a.create("/api/cont/x", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Stat st = new Stat();
                a.create("/api/ttl", b("t"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, st, 500);
                Check.eq(0L, a.exists("/api/ttl", false).getEphemeralOwner(),
                        "a TTL node's ephemeralOwner as ZooKeeper 3.8 reports it");
                a.delete("/api/cont/x", -1);
                Check.await("the empty container is removed", () -> {
                    try {
                        return a.exists("/api/cont", false) == null;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                Check.await("the TTL node expires", () -> {
                    try {
                        return a.exists("/api/ttl", false) == null;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
            });

            Check.step("ACLs: digest, world, ip, setACL, whoAmI", () -> {
                a.addAuthInfo("digest", b("alice:secret"));
                a.create("/api/acl", b("x"), Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
                List<ACL> acl = a.getACL("/api/acl", new Stat());
                Check.eq(1, acl.size(), "one ACL entry");
                Check.eq(Perms.ALL, acl.get(0).getPerms(), "perms");
                Check.eq(new Id("digest", DigestAuthenticationProvider.generateDigest("alice:secret")),
                        acl.get(0).getId(), "digest id");
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "read without auth",
                        () -> bz.getData("/api/acl", false, null)).code(), "read without auth");
                Check.that(bz.exists("/api/acl", false) != null, "exists needs no permission");
                ZooKeeper wrong = Check.zk(new Check.Events("wrong"));
                wrong.addAuthInfo("digest", b("alice:wrong"));
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "read with a wrong password",
                        () -> wrong.getData("/api/acl", false, null)).code(), "read with a wrong password");
                ZooKeeper right = Check.zk(new Check.Events("right"));
                right.addAuthInfo("digest", b("alice:secret"));
                Check.eq("x", s(right.getData("/api/acl", false, null)), "read with the right password");

                a.create("/api/ro", b("r"), Ids.READ_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.eq("r", s(bz.getData("/api/ro", false, null)), "world read");
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "write a read-only node",
                        () -> bz.setData("/api/ro", b("w"), -1)).code(), "write a read-only node");
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "setACL without ADMIN",
                        () -> bz.setACL("/api/ro", Ids.OPEN_ACL_UNSAFE, -1)).code(), "setACL without ADMIN");

                a.create("/api/open", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                List<ACL> readAdmin = Arrays.asList(new ACL(Perms.READ | Perms.ADMIN, Ids.ANYONE_ID_UNSAFE));
                Check.eq(1, bz.setACL("/api/open", readAdmin, 0).getAversion(), "aversion after setACL");
                Check.eq(Code.BADVERSION, Check.raises(KeeperException.class, "setACL stale version",
                        () -> bz.setACL("/api/open", readAdmin, 0)).code(), "setACL with a stale version");
                Stat ast = new Stat();
                Check.eq(readAdmin, bz.getACL("/api/open", ast), "getACL after setACL");
                Check.eq(1, ast.getAversion(), "getACL stat");

                a.create("/api/conly", null, Arrays.asList(new ACL(Perms.CREATE, Ids.ANYONE_ID_UNSAFE)), CreateMode.PERSISTENT);
                bz.create("/api/conly/k", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "list without READ",
                        () -> bz.getChildren("/api/conly", false)).code(), "list without READ");
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "delete without DELETE",
                        () -> bz.delete("/api/conly/k", -1)).code(), "delete without DELETE on the parent");

                a.create("/api/ip", b("i"), Arrays.asList(new ACL(Perms.ALL, new Id("ip", "127.0.0.1"))), CreateMode.PERSISTENT);
                Check.eq("i", s(bz.getData("/api/ip", false, null)), "ip ACL matches loopback");
                a.create("/api/ip10", b("i"), Arrays.asList(new ACL(Perms.ALL, new Id("ip", "10.0.0.0/8"))), CreateMode.PERSISTENT);
                Check.eq(Code.NOAUTH, Check.raises(KeeperException.class, "ip ACL of another network",
                        () -> bz.getData("/api/ip10", false, null)).code(), "ip ACL of another network");

                Check.eq(Code.INVALIDACL, Check.raises(KeeperException.class, "empty ACL",
                        () -> a.create("/api/noacl", null, new ArrayList<>(), CreateMode.PERSISTENT)).code(), "empty ACL");
                Check.eq(Code.INVALIDACL, Check.raises(KeeperException.class, "creator ACL without auth",
                        () -> bz.create("/api/noauth", null, Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT)).code(),
                        "CREATOR_ALL_ACL without authentication");

                List<String> who = new ArrayList<>();
                for (ClientInfo ci : a.whoAmI()) {
                    who.add(ci.getAuthScheme() + ":" + ci.getUser());
                }
                Collections.sort(who);
                Check.eq(Arrays.asList("digest:alice", "ip:127.0.0.1"), who, "whoAmI");
            });

            Check.step("one-shot watches: data, exists, children, delete", () -> {
                a.create("/api/w", b("0"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                a.getData("/api/w", true, null);
                bz.setData("/api/w", b("1"), -1);
                ev.expect(NodeDataChanged, "/api/w");
                bz.setData("/api/w", b("2"), -1); // the watch was one-shot: no second event
                Check.that(a.exists("/api/wmark", true) == null, "marker absent");
                bz.create("/api/wmark", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                ev.expect(NodeCreated, "/api/wmark");
                a.getChildren("/api/w", true);
                bz.create("/api/w/c", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                ev.expect(NodeChildrenChanged, "/api/w");
                a.getData("/api/w/c", true, null);
                a.getChildren("/api/w/c", true);
                bz.delete("/api/w/c", -1);
                ev.expect(NodeDeleted, "/api/w/c");
                a.exists("/api/wmark", true);
                bz.delete("/api/wmark", -1);
                ev.expect(NodeDeleted, "/api/wmark");
                ev.expectNoneQueued();
            });

            Check.step("a watch event arrives before the reply of the change", () -> {
                a.create("/api/ord", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                AtomicBoolean fired = new AtomicBoolean();
                AtomicReference<Boolean> firedAtReply = new AtomicReference<>();
                CountDownLatch done = new CountDownLatch(1);
                a.getData("/api/ord", e -> fired.set(true), null);
                a.setData("/api/ord", b("x"), -1, (rc, path, ctx, stat) -> {
                    firedAtReply.set(fired.get());
                    done.countDown();
                }, null);
                Check.await("setData callback", done);
                Check.eq(Boolean.TRUE, firedAtReply.get(), "watch fired before the setData reply");
            });

            Check.step("persistent and persistent recursive watches, removeWatches", () -> {
                a.create("/api/pw", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.Events pw = new Check.Events("persistent");
                a.addWatch("/api/pw", pw, AddWatchMode.PERSISTENT);
                bz.setData("/api/pw", b("1"), -1);
                pw.expect(NodeDataChanged, "/api/pw");
                bz.setData("/api/pw", b("2"), -1);
                pw.expect(NodeDataChanged, "/api/pw");
                bz.create("/api/pw/c", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                pw.expect(NodeChildrenChanged, "/api/pw");
                bz.setData("/api/pw/c", b("x"), -1); // not recursive: no event for the child
                bz.delete("/api/pw/c", -1);
                pw.expect(NodeChildrenChanged, "/api/pw");

                a.create("/api/rw", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.Events rw = new Check.Events("recursive");
                a.addWatch("/api/rw", rw, AddWatchMode.PERSISTENT_RECURSIVE);
                bz.create("/api/rw/a", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                rw.expect(NodeCreated, "/api/rw/a");
                bz.create("/api/rw/a/b", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                rw.expect(NodeCreated, "/api/rw/a/b");
                bz.setData("/api/rw/a", b("d"), -1);
                rw.expect(NodeDataChanged, "/api/rw/a");
                bz.delete("/api/rw/a/b", -1);
                rw.expect(NodeDeleted, "/api/rw/a/b");

                a.removeWatches("/api/pw", pw, Watcher.WatcherType.Any, false);
                bz.setData("/api/pw", b("3"), -1); // removed: no event
                bz.setData("/api/rw", b("m"), -1); // marker on the same client connection
                rw.expect(NodeDataChanged, "/api/rw");
                pw.expect(Watcher.Event.EventType.PersistentWatchRemoved, "/api/pw");
                pw.expectNoneQueued();

                Check.Events rm = new Check.Events("removed");
                a.getData("/api/w", rm, null);
                a.removeWatches("/api/w", rm, Watcher.WatcherType.Data, false);
                rm.expect(Watcher.Event.EventType.DataWatchRemoved, "/api/w");
                Check.eq(Code.NOWATCHER, Check.raises(KeeperException.class, "remove a missing watch",
                        () -> a.removeWatches("/api/w", rm, Watcher.WatcherType.Data, false)).code(),
                        "remove a watch that is not there");
            });

            Check.step("multi: success, failure results, read multi, transaction", () -> {
                List<OpResult> rs = a.multi(List.of(
                        Op.create("/api/m", b("0"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                        Op.setData("/api/m", b("1"), 0),
                        Op.check("/api/m", 1),
                        Op.create("/api/m/s-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)));
                Check.eq(4, rs.size(), "results");
                Check.eq("/api/m", ((OpResult.CreateResult) rs.get(0)).getPath(), "create result");
                Check.eq(1, ((OpResult.SetDataResult) rs.get(1)).getStat().getVersion(), "setData result");
                Check.that(rs.get(2) instanceof OpResult.CheckResult, "check result: %s", rs.get(2));
                Check.eq("/api/m/s-0000000000", ((OpResult.CreateResult) rs.get(3)).getPath(), "sequential in multi");

                KeeperException e = Check.raises(KeeperException.class, "failing multi", () -> a.multi(List.of(
                        Op.create("/api/m2", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                        Op.check("/api/m", 5),
                        Op.setData("/api/m", b("x"), -1))));
                Check.eq(Code.BADVERSION, e.code(), "failing multi code");
                List<Integer> codes = new ArrayList<>();
                for (OpResult r : e.getResults()) {
                    codes.add(((OpResult.ErrorResult) r).getErr());
                }
                Check.eq(Arrays.asList(0, Code.BADVERSION.intValue(), Code.RUNTIMEINCONSISTENCY.intValue()),
                        codes, "per-op results of a failed multi");
                Check.that(a.exists("/api/m2", false) == null, "nothing of a failed multi is applied");
                Check.eq("1", s(a.getData("/api/m", false, null)), "data unchanged by the failed multi");

                List<OpResult> reads = a.multi(List.of(Op.getChildren("/api/m"), Op.getData("/api/m"),
                        Op.getData("/api/missing")));
                Check.eq(List.of("s-0000000000"), ((OpResult.GetChildrenResult) reads.get(0)).getChildren(), "read multi children");
                Check.eq("1", s(((OpResult.GetDataResult) reads.get(1)).getData()), "read multi data");
                Check.eq(Code.NONODE.intValue(), ((OpResult.ErrorResult) reads.get(2)).getErr(), "read multi error");

                List<OpResult> tx = a.transaction()
                        .create("/api/t", b("t"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)
                        .delete("/api/m/s-0000000000", -1)
                        .commit();
                Check.eq(2, tx.size(), "transaction results");
                Check.that(a.exists("/api/t", false) != null && a.getChildren("/api/m", false).isEmpty(),
                        "transaction applied");
            });

            Check.step("multi: TTL, container, ephemeral and sequential creates, watches", () -> {
                a.create("/api/mx", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                a.getChildren("/api/mx", true);
                List<OpResult> rs = a.multi(Arrays.asList(
                        Op.create("/api/mx/ttl", b("t"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 60_000),
                        Op.create("/api/mx/cont", null, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                        Op.create("/api/mx/eph", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL),
                        Op.create("/api/mx/s-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                        Op.create("/api/mx/s-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                        Op.create("/api/mx/tmp", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                        Op.delete("/api/mx/tmp", 0)));
                Check.eq(7, rs.size(), "results");
                Check.eq("/api/mx/s-0000000003", ((OpResult.CreateResult) rs.get(3)).getPath(), "first sequential");
                Check.eq("/api/mx/s-0000000004", ((OpResult.CreateResult) rs.get(4)).getPath(), "second sequential");
                ev.expect(NodeChildrenChanged, "/api/mx"); // one event for the whole multi
                Check.eq(a.getSessionId(), a.exists("/api/mx/eph", false).getEphemeralOwner(), "ephemeral from a multi");
                Check.that(a.exists("/api/mx/tmp", false) == null, "created and deleted in one multi");
                Check.that(a.exists("/api/mx/ttl", false) != null && a.exists("/api/mx/cont", false) != null,
                        "TTL and container nodes from a multi");
                Check.eq(Code.NONODE, Check.raises(KeeperException.class, "check a missing node",
                        () -> a.multi(Arrays.asList(Op.check("/api/mx/none", -1)))).code(), "check of a missing node");
                a.getData("/api/mx/ttl", true, null);
                a.multi(Arrays.asList(Op.setData("/api/mx/ttl", b("1"), -1), Op.setData("/api/mx/ttl", b("2"), -1)));
                ev.expect(NodeDataChanged, "/api/mx/ttl");
                a.exists("/api/mx/marker", true);
                a.create("/api/mx/marker", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                ev.expect(NodeCreated, "/api/mx/marker"); // and no second NodeDataChanged before it
            });

            Check.step("async calls complete in submission order", () -> {
                a.create("/api/async", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                List<Integer> order = Collections.synchronizedList(new ArrayList<>());
                int n = 300;
                CountDownLatch all = new CountDownLatch(n);
                for (int i = 0; i < n; i++) {
                    final int idx = i;
                    if (i % 3 == 2) {
                        a.exists("/api/async/n" + (i - 1), false, (rc, path, ctx, stat) -> {
                            if (rc != 0 || stat == null) {
                                order.add(-1000 - idx);
                            } else {
                                order.add(idx);
                            }
                            all.countDown();
                        }, null);
                    } else {
                        a.create("/api/async/n" + i, b("v"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT,
                                (rc, path, ctx, name) -> {
                                    order.add(rc == 0 ? idx : -1000 - idx);
                                    all.countDown();
                                }, null);
                    }
                }
                Check.await("async callbacks", all);
                List<Integer> want = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    want.add(i);
                }
                Check.eq(want, order, "callback order (a read sees the write queued before it)");
                CountDownLatch synced = new CountDownLatch(1);
                AtomicReference<Integer> syncRc = new AtomicReference<>();
                a.sync("/api", (rc, path, ctx) -> {
                    syncRc.set(rc);
                    synced.countDown();
                }, null);
                Check.await("sync", synced);
                Check.eq(0, syncRc.get(), "sync rc");
            });

            Check.step("large data and chroot", () -> {
                byte[] big = new byte[512 * 1024];
                for (int i = 0; i < big.length; i++) {
                    big[i] = (byte) (i * 31);
                }
                a.create("/api/big", big, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Check.that(Arrays.equals(big, a.getData("/api/big", false, null)), "512 KiB round trip");

                Check.Events evr = new Check.Events("chroot");
                ZooKeeper r = Check.zk(Check.connect + "/api", 15_000, evr);
                Check.eq("/croot", r.create("/croot", b("c"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                        "create under a chroot returns the chrooted path");
                Check.eq("c", s(a.getData("/api/croot", false, null)), "chrooted node seen from the root");
                Check.that(r.getChildren("/", false).contains("croot"), "chrooted listing");
                Check.that(r.exists("/cw", true) == null, "chrooted exists");
                a.create("/api/cw", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                evr.expect(NodeCreated, "/cw");
            });

            Check.step("failed authentication: AuthFailed, then AUTHFAILED on every call", () -> {
                for (String[] bad : new String[][] {{"nosuchscheme", "x"}}) {
                    Check.Events evf = new Check.Events("auth " + bad[0]);
                    ZooKeeper f = Check.zk(evf);
                    f.addAuthInfo(bad[0], b(bad[1]));
                    evf.awaitState(Watcher.Event.KeeperState.AuthFailed);
                    Check.eq(Code.AUTHFAILED, Check.raises(KeeperException.class, "a call after failed auth (" + bad[0] + ")",
                            () -> f.exists("/api", false)).code(), "a call after failed auth (" + bad[0] + ")");
                }
            });

            Check.step("a request over jute.maxbuffer costs the connection, not the session", () -> {
                long sid = a.getSessionId();
                byte[] huge = new byte[1024 * 1024 + 100];
                Check.raises(KeeperException.ConnectionLossException.class, "create with 1 MiB + 100 bytes",
                        () -> a.create("/api/huge", huge, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
                Check.retry("exists after reconnect", () ->
                        Check.that(a.exists("/api/huge", false) == null, "the oversized create was applied"));
                Check.eq(sid, a.getSessionId(), "session after the dropped connection");
                Check.that(a.exists("/api/eph", false) != null, "ephemeral after the dropped connection");
            });
        });
    }
}
