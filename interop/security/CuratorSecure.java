import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;

/**
 * Curator over TLS with SASL DIGEST-MD5 on top (both set up by the test through system
 * properties: zookeeper.client.secure, ClientCnxnSocketNetty, the key and trust stores, and a
 * JAAS Client section). Usage: CuratorSecure CONNECT_STRING. Prints whoAmI (the x509 and the
 * sasl id), takes and releases an InterProcessMutex, and writes a node only the two ids may read.
 */
public class CuratorSecure {
    public static void main(String[] args) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[0], 10000, 10000,
            new RetryOneTime(500));
        c.start();
        if (!c.blockUntilConnected(15, TimeUnit.SECONDS)) {
            System.out.println("NOCONNECT");
            c.close();
            return;
        }
        // The SASL exchange runs right after the session is set up; wait for its id.
        List<String> who = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            who.clear();
            for (ClientInfo ci : c.getZookeeperClient().getZooKeeper().whoAmI()) {
                who.add("WHOAMI " + ci.getAuthScheme() + " " + ci.getUser());
            }
            if (who.stream().anyMatch(w -> w.startsWith("WHOAMI sasl"))) {
                break;
            }
            Thread.sleep(100);
        }
        Collections.sort(who);
        who.forEach(System.out::println);
        InterProcessMutex lock = new InterProcessMutex(c, "/secure-lock");
        if (lock.acquire(10, TimeUnit.SECONDS)) {
            System.out.println("LOCK acquired");
            lock.release();
        }
        List<ACL> acl = new ArrayList<>();
        acl.add(new ACL(ZooDefs.Perms.ALL, new Id("sasl", "bob")));
        c.create().withACL(acl).forPath("/secure", "both".getBytes());
        System.out.println("READ " + new String(c.getData().forPath("/secure")));
        System.out.println("ACL " + c.getACL().forPath("/secure"));
        c.close();
    }
}
