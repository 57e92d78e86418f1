import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.CuratorEventType;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/** Curator 5.4 transactions and the framework API around them (background calls, protection, versions). */
public final class CuratorTxn {
    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework c = Check.curator();

            Check.step("transaction: create, setData, check, delete", () -> {
                c.create().forPath("/txn", "0".getBytes());
                c.create().forPath("/txn/old");
                CuratorOp create = c.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath("/txn/s-", "s".getBytes());
                CuratorOp set = c.transactionOp().setData().withVersion(0).forPath("/txn", "1".getBytes());
                CuratorOp check = c.transactionOp().check().withVersion(1).forPath("/txn");
                CuratorOp delete = c.transactionOp().delete().forPath("/txn/old");
                List<CuratorTransactionResult> rs = c.transaction().forOperations(create, set, check, delete);
                Check.eq(4, rs.size(), "results");
                Check.eq(OperationType.CREATE, rs.get(0).getType(), "op 0");
                Check.eq("/txn/s-0000000001", rs.get(0).getResultPath(), "sequential path in a transaction");
                Check.eq(OperationType.SET_DATA, rs.get(1).getType(), "op 1");
                Check.eq(1, rs.get(1).getResultStat().getVersion(), "setData stat");
                Check.eq(OperationType.CHECK, rs.get(2).getType(), "op 2");
                Check.eq(OperationType.DELETE, rs.get(3).getType(), "op 3");
                Check.eq(List.of("s-0000000001"), c.getChildren().forPath("/txn"), "children after the transaction");
            });

            Check.step("a failing transaction applies nothing", () -> {
                KeeperException e = Check.raises(KeeperException.class, "failing transaction", () ->
                        c.transaction().forOperations(
                                c.transactionOp().create().forPath("/txn/new"),
                                c.transactionOp().setData().forPath("/txn", "2".getBytes()),
                                c.transactionOp().delete().forPath("/txn/missing")));
                Check.eq(KeeperException.Code.NONODE, e.code(), "failure code");
                Check.that(c.checkExists().forPath("/txn/new") == null, "create of a failed transaction applied");
                Check.eq("1", new String(c.getData().forPath("/txn")), "setData of a failed transaction applied");
            });

            Check.step("background calls, protected create, versions, guaranteed delete", () -> {
                CountDownLatch done = new CountDownLatch(1);
                AtomicReference<String> got = new AtomicReference<>();
                c.create().creatingParentsIfNeeded().inBackground((client, event) -> {
                    if (event.getType() == CuratorEventType.CREATE && event.getResultCode() == 0) {
                        got.set(event.getName());
                    }
                    done.countDown();
                }).forPath("/fw/a/b/c", "x".getBytes());
                Check.await("background create", done);
                Check.eq("/fw/a/b/c", got.get(), "background create result");
                String p = c.create().withProtection().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath("/fw/lock-", "p".getBytes());
                Check.that(p.startsWith("/fw/_c_") && p.contains("-lock-"), "protected name: %s", p);
                Stat st = new Stat();
                c.getData().storingStatIn(st).forPath("/fw/a/b/c");
                c.setData().withVersion(st.getVersion()).forPath("/fw/a/b/c", "y".getBytes());
                Check.raises(KeeperException.BadVersionException.class, "stale setData",
                        () -> c.setData().withVersion(st.getVersion()).forPath("/fw/a/b/c", "z".getBytes()));
                c.delete().guaranteed().deletingChildrenIfNeeded().forPath("/fw/a");
                Check.that(c.checkExists().forPath("/fw/a") == null, "deletingChildrenIfNeeded");
            });
        });
    }
}
