import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;

/**
 * The Java client authenticating with SASL DIGEST-MD5 (its JAAS Client section comes from
 * -Djava.security.auth.login.config, set by the test, crates/cli/tests/sasl.rs). Usage:
 * SaslClient CONNECT_STRING. Prints lines the test compares between ZooKeeper and corral: how
 * the SASL exchange ended (SaslAuthenticated or AuthFailed, within 10 s), whoAmI, and how the
 * sasl ACL scheme behaves.
 */
public class SaslClient {
    public static void main(String[] args) throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        AtomicReference<Watcher.Event.KeeperState> end = new AtomicReference<>();
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            Watcher.Event.KeeperState s = e.getState();
            if (s == Watcher.Event.KeeperState.SaslAuthenticated
                    || s == Watcher.Event.KeeperState.AuthFailed) {
                end.compareAndSet(null, s);
                done.countDown();
            }
        });
        if (!done.await(10, TimeUnit.SECONDS)) {
            System.out.println("SASL no outcome");
            zk.close();
            return;
        }
        System.out.println("SASL " + end.get());
        if (end.get() != Watcher.Event.KeeperState.SaslAuthenticated) {
            zk.close();
            return;
        }
        List<String> who = new ArrayList<>();
        String user = null;
        for (ClientInfo c : zk.whoAmI()) {
            who.add("WHOAMI " + c.getAuthScheme() + " " + c.getUser());
            if (c.getAuthScheme().equals("sasl")) {
                user = c.getUser();
            }
        }
        Collections.sort(who);
        who.forEach(System.out::println);
        if (user == null) {
            zk.close();
            return;
        }
        zk.create("/sasl", "for bob".getBytes(),
            Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("sasl", user))),
            CreateMode.PERSISTENT);
        System.out.println("READ " + new String(zk.getData("/sasl", false, null)));
        zk.create("/sasl-auth", new byte[0], ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        System.out.println("AUTH-ACL " + zk.getACL("/sasl-auth", null));
        zk.create("/sasl-other", new byte[0],
            Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("sasl", "alice"))),
            CreateMode.PERSISTENT);
        try {
            zk.getData("/sasl-other", false, null);
            System.out.println("OTHER readable");
        } catch (KeeperException e) {
            System.out.println("OTHER " + e.code());
        }
        zk.close();
    }
}
