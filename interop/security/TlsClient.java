import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;

/**
 * The Java client over TLS (its TLS settings come as -Dzookeeper.* system properties from the
 * test, crates/cli/tests/tls.rs). Usage: TlsClient CONNECT_STRING full|connect. Prints lines
 * the test compares between ZooKeeper and corral: NOCONNECT when no session is up within 6 s
 * (a working TLS session is up in about one); otherwise CONNECTED, and with "full" what whoAmI
 * says and how the x509 ACL scheme behaves.
 */
public class TlsClient {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String mode = args[1];
        ZKClientConfig cfg = new ZKClientConfig();
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(connect, 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                up.countDown();
            }
        }, cfg);
        if (!up.await(6, TimeUnit.SECONDS)) {
            System.out.println("NOCONNECT");
            zk.close();
            return;
        }
        System.out.println("CONNECTED");
        if (mode.equals("full")) {
            full(zk);
        }
        zk.close();
    }

    static void full(ZooKeeper zk) throws Exception {
        List<String> who = new ArrayList<>();
        String subject = null;
        for (ClientInfo c : zk.whoAmI()) {
            who.add("WHOAMI " + c.getAuthScheme() + " " + c.getUser());
            if (c.getAuthScheme().equals("x509")) {
                subject = c.getUser();
            }
        }
        Collections.sort(who);
        who.forEach(System.out::println);
        if (subject == null) {
            System.out.println("NO-X509-ID");
            return;
        }
        // A node only this certificate may touch: created, read and changed through x509.
        List<ACL> mine = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("x509", subject)));
        zk.create("/tls", "over tls".getBytes(), mine, CreateMode.PERSISTENT);
        System.out.println("READ " + new String(zk.getData("/tls", false, null)));
        System.out.println("ACL " + zk.getACL("/tls", null));
        // The auth scheme expands to the connection's x509 id too.
        zk.create("/tls-auth", new byte[0], ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        System.out.println("AUTH-ACL " + zk.getACL("/tls-auth", null));
        // Someone else's subject: no access.
        List<ACL> other = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("x509", "CN=someone else")));
        zk.create("/tls-other", new byte[0], other, CreateMode.PERSISTENT);
        try {
            zk.getData("/tls-other", false, null);
            System.out.println("OTHER readable");
        } catch (KeeperException e) {
            System.out.println("OTHER " + e.code());
        }
        try {
            zk.create("/tls-bad", new byte[0],
                Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("x509", "not a name"))),
                CreateMode.PERSISTENT);
            System.out.println("BAD-ID accepted");
        } catch (KeeperException e) {
            System.out.println("BAD-ID " + e.code());
        }
    }
}
