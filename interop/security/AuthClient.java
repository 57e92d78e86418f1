import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

/**
 * What a client sees of enforce.auth.* and DigestAuthenticationProvider.digestAlg (the test,
 * crates/cli/tests/sasl.rs, configures the server). Usage: AuthClient CONNECT_STRING plain|digest.
 * "plain" sends a request without authenticating; "digest" authenticates first (bob:secret),
 * then creates a node with CREATOR_ALL_ACL and prints its ACL (the digest id, hashed with the
 * server's algorithm). Prints lines the test compares between ZooKeeper and corral.
 */
public class AuthClient {
    public static void main(String[] args) throws Exception {
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                up.countDown();
            }
        });
        if (!up.await(10, TimeUnit.SECONDS)) {
            System.out.println("NOCONNECT");
            zk.close();
            return;
        }
        if (args[1].equals("digest")) {
            zk.addAuthInfo("digest", "bob:secret".getBytes());
        }
        try {
            zk.exists("/", false);
            System.out.println("EXISTS ok");
        } catch (KeeperException e) {
            System.out.println("EXISTS " + e.code());
            zk.close();
            return;
        }
        if (args[1].equals("digest")) {
            zk.create("/auth-" + System.nanoTime() % 1, new byte[0], ZooDefs.Ids.CREATOR_ALL_ACL,
                CreateMode.PERSISTENT);
            System.out.println("ACL " + zk.getACL("/auth-0", null));
        }
        zk.close();
    }
}
