import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.data.Stat;

/** Curator 5.4 PersistentNode (re-created after deletion and session loss) and PersistentTtlNode. */
public final class CuratorNodes {
    static Stat stat(CuratorFramework c, String path) {
        try {
            return c.checkExists().forPath(path);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework owner = Check.curator();
            CuratorFramework other = Check.curator();

            Check.step("PersistentNode (EPHEMERAL): survives deletion and session loss", () -> {
                PersistentNode n = new PersistentNode(owner, CreateMode.EPHEMERAL, false, "/nodes/eph", "v1".getBytes());
                n.start();
                Check.that(n.waitForInitialCreate(Check.WAIT_MS, TimeUnit.MILLISECONDS), "initial create");
                long session1 = owner.getZookeeperClient().getZooKeeper().getSessionId();
                Check.eq(session1, stat(other, "/nodes/eph").getEphemeralOwner(), "owner session");
                other.delete().forPath("/nodes/eph");
                Check.await("re-created after deletion", () -> stat(other, "/nodes/eph") != null);
                n.setData("v2".getBytes());
                Check.await("setData reaches the node", () -> {
                    try {
                        return "v2".equals(new String(other.getData().forPath("/nodes/eph")));
                    } catch (Exception e) {
                        return false;
                    }
                });
                Check.killSession(owner);
                Check.await("re-created under a new session", () -> {
                    Stat s = stat(other, "/nodes/eph");
                    return s != null && s.getEphemeralOwner() != session1;
                });
                Check.eq("v2", new String(other.getData().forPath("/nodes/eph")), "data after re-creation");
                n.close();
                Check.await("gone after close", () -> stat(other, "/nodes/eph") == null);
            });

            Check.step("PersistentTtlNode: exists while touched, expires after close", () -> {
                PersistentTtlNode n = new PersistentTtlNode(owner, "/nodes/ttl", 1000, "t".getBytes());
                n.start();
                Check.that(n.waitForInitialCreate(Check.WAIT_MS, TimeUnit.MILLISECONDS), "initial create");
                Check.eq("t", new String(other.getData().forPath("/nodes/ttl")), "TTL node data");
                // The recipe keeps the node alive with a touched child; it must still be there
                // after several TTLs and container checks.
                Thread.sleep(2500);
                Check.that(stat(other, "/nodes/ttl") != null, "TTL node vanished while its owner was alive");
                n.close();
                Check.await("TTL node expires after close", () -> stat(other, "/nodes/ttl") == null);
            });

            Check.step("GroupMember: membership follows sessions", () -> {
                org.apache.curator.framework.recipes.nodes.GroupMember m1 =
                        new org.apache.curator.framework.recipes.nodes.GroupMember(owner, "/nodes/group", "m1", "one".getBytes());
                org.apache.curator.framework.recipes.nodes.GroupMember m2 =
                        new org.apache.curator.framework.recipes.nodes.GroupMember(other, "/nodes/group", "m2", "two".getBytes());
                m1.start();
                m2.start();
                Check.await("both members seen by both", () ->
                        m1.getCurrentMembers().keySet().equals(java.util.Set.of("m1", "m2"))
                                && m2.getCurrentMembers().keySet().equals(java.util.Set.of("m1", "m2")));
                Check.eq("two", new String(m1.getCurrentMembers().get("m2")), "member data");
                m2.close();
                Check.await("m2 leaves", () -> m1.getCurrentMembers().keySet().equals(java.util.Set.of("m1")));
                m1.close();
            });

            Check.step("create().withTtl() and containers", () -> {
                owner.create().withTtl(500).creatingParentContainersIfNeeded()
                        .withMode(CreateMode.PERSISTENT_WITH_TTL).forPath("/nodes/ctr/ttl", "x".getBytes());
                Check.that(stat(other, "/nodes/ctr/ttl") != null, "ttl node created");
                Check.await("ttl node expires, then its container parent", () ->
                        stat(other, "/nodes/ctr/ttl") == null && stat(other, "/nodes/ctr") == null);
            });
        });
    }
}
