import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.zookeeper.CreateMode;

/**
 * A client process that holds a lock, leadership and an ephemeral is killed with SIGKILL: the
 * server must expire its session after the timeout (4 s) so the other contender takes over.
 */
public final class FailCrash {
    public static void main(String[] args) {
        if (args.length > 1 && args[1].equals("child")) {
            child(args);
            return;
        }
        Check.run(args, () -> {
            CuratorFramework b = Check.curator();
            Process child = new ProcessBuilder(javaBin(), "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", System.getProperty("java.class.path"),
                    "FailCrash", Check.connect, "child").redirectErrorStream(true).start();
            try {
                BlockingQueue<String> lines = new LinkedBlockingQueue<>();
                Thread reader = new Thread(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
                        String l;
                        while ((l = r.readLine()) != null) {
                            System.out.println("  child: " + l);
                            lines.add(l);
                        }
                    } catch (Exception e) {
                        // child gone
                    }
                }, "child-reader");
                reader.setDaemon(true);
                reader.start();

                Check.step("a child process takes lock, leadership and an ephemeral", () -> {
                    long end = System.nanoTime() + Check.WAIT_MS * 1_000_000;
                    while (true) {
                        String l = lines.poll(Math.max(1, (end - System.nanoTime()) / 1_000_000), TimeUnit.MILLISECONDS);
                        Check.that(l != null, "the child did not report HELD");
                        if (l.startsWith("HELD")) {
                            break;
                        }
                    }
                });

                AtomicBoolean bAcquired = new AtomicBoolean();
                InterProcessMutex mb = new InterProcessMutex(b, "/crash/lock");
                LeaderLatch lb = new LeaderLatch(b, "/crash/leader", "b");
                Check.step("the crashed holder's session expires, the survivor takes over", () -> {
                    lb.start();
                    Thread waiter = new Thread(() -> {
                        try {
                            if (mb.acquire(4 * Check.WAIT_MS, TimeUnit.MILLISECONDS)) {
                                bAcquired.set(true);
                                mb.release();
                            }
                        } catch (Exception e) {
                            Check.log("waiter: %s", e);
                        }
                    }, "waiter");
                    waiter.setDaemon(true);
                    waiter.start();
                    Check.await("b queues for the lock", () -> {
                        try {
                            return mb.getParticipantNodes().size() == 2;
                        } catch (Exception e) {
                            throw new RuntimeException(e);
                        }
                    });
                    Check.that(!bAcquired.get() && !lb.hasLeadership(), "b got ahead of the child");
                    Check.that(b.checkExists().forPath("/crash/eph") != null, "child's ephemeral");
                    child.destroyForcibly(); // SIGKILL: no closeSession
                    Check.that(child.waitFor(Check.WAIT_MS, TimeUnit.MILLISECONDS), "child did not die");
                    Check.log("child killed");
                    Check.await("b gets the lock after the child's session expires", bAcquired::get);
                    Check.await("b becomes leader", lb::hasLeadership);
                    Check.that(b.checkExists().forPath("/crash/eph") == null, "child's ephemeral outlived its session");
                    lb.close();
                });
            } finally {
                child.destroyForcibly();
            }
        });
    }

    static String javaBin() {
        return System.getProperty("java.home") + "/bin/java";
    }

    static void child(String[] args) {
        // The parent holds our stdin; if it dies, so do we.
        Thread stdinWatch = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing
                }
            } catch (Exception e) {
                // closed
            }
            Runtime.getRuntime().halt(0);
        }, "stdin-watch");
        stdinWatch.setDaemon(true);
        stdinWatch.start();
        Check.run(args, () -> {
            CuratorFramework c = Check.curator(Check.connect, 4_000);
            InterProcessMutex m = new InterProcessMutex(c, "/crash/lock");
            Check.that(m.acquire(Check.WAIT_MS, TimeUnit.MILLISECONDS), "child acquires");
            LeaderLatch l = new LeaderLatch(c, "/crash/leader", "child");
            l.start();
            Check.that(l.await(Check.WAIT_MS, TimeUnit.MILLISECONDS), "child leads");
            c.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath("/crash/eph");
            System.out.println("HELD session 0x" + Long.toHexString(c.getZookeeperClient().getZooKeeper().getSessionId())
                    + " timeout " + c.getZookeeperClient().getZooKeeper().getSessionTimeout());
            System.out.flush();
            Thread.sleep(10 * Check.WAIT_MS);
        });
    }
}
