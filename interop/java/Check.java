import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * Shared helper of the interop scenarios: assertions, bounded waits, clients, and the control
 * protocol with the Rust runner (crates/cli/tests/interop.rs).
 *
 * A scenario is {@code main(String[] args)} with {@code args[0]} = the server's connect string;
 * it calls {@link #run}, which exits 0 after printing "PASS", or 1 after printing
 * "FAIL: <step>: <message>". Every wait here is bounded ({@link #WAIT_MS}); a watchdog halts the
 * JVM after {@code -Dinterop.deadline} seconds (default 150) with a thread dump.
 *
 * Control protocol: {@link #action} prints "@@ACTION restart|stop|start" on stdout and blocks
 * until the runner answers "@@DONE <action>" on stdin.
 */
public final class Check {
    /** Upper bound for anything that should happen "soon"; never asserted as a speed. */
    public static final long WAIT_MS = 30_000;

    public static String connect;
    private static volatile String currentStep = "(start-up)";
    private static final long START = System.nanoTime();
    private static final List<AutoCloseable> toClose = new ArrayList<>();
    private static BufferedReader stdin;

    public interface Body {
        void run() throws Exception;
    }

    public interface IndexedBody {
        void run(int i) throws Exception;
    }

    /** A failed assertion. */
    public static final class Failed extends RuntimeException {
        public Failed(String msg) {
            super(msg);
        }
    }

    private Check() {}

    // ------------------------------------------------------------------ running

    public static void run(String[] args, Body body) {
        if (args.length < 1) {
            System.out.println("usage: <Scenario> host:port");
            System.exit(2);
        }
        connect = args[0];
        long deadline = Long.getLong("interop.deadline", 150L);
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(deadline * 1000);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("FAIL: " + currentStep + ": scenario deadline of " + deadline
                    + " s passed; threads:");
            for (var e : Thread.getAllStackTraces().entrySet()) {
                System.out.println("  thread " + e.getKey().getName());
                for (StackTraceElement f : e.getValue()) {
                    System.out.println("      at " + f);
                }
            }
            System.out.flush();
            Runtime.getRuntime().halt(3);
        }, "watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        int status = 0;
        try {
            body.run();
            currentStep = "(clean-up)";
            closeAll();
            System.out.println("PASS");
        } catch (Throwable t) {
            status = 1;
            String msg = t instanceof Failed ? t.getMessage() : t.toString();
            System.out.println("FAIL: " + currentStep + ": " + msg);
            if (!(t instanceof Failed)) {
                t.printStackTrace(System.out);
            }
        }
        System.out.flush();
        Runtime.getRuntime().halt(status);
    }

    /** Runs one named group of checks, logging its start and end. */
    public static void step(String name, Body body) throws Exception {
        currentStep = name;
        long t0 = System.nanoTime();
        log("-- %s", name);
        body.run();
        log("ok %s (%d ms)", name, (System.nanoTime() - t0) / 1_000_000);
    }

    public static void log(String fmt, Object... args) {
        System.out.printf("[%6.2f] %s%n", (System.nanoTime() - START) / 1e9, String.format(fmt, args));
        System.out.flush();
    }

    // ------------------------------------------------------------------ assertions

    public static Failed fail(String fmt, Object... args) {
        throw new Failed(String.format(fmt, args));
    }

    public static void that(boolean cond, String fmt, Object... args) {
        if (!cond) {
            fail(fmt, args);
        }
    }

    public static void eq(Object expected, Object got, String what) {
        if (!Objects.equals(expected, got)) {
            fail("%s: expected <%s>, got <%s>", what, expected, got);
        }
    }

    /** Expects {@code body} to throw an exception of {@code type}; returns it. */
    public static <T extends Throwable> T raises(Class<T> type, String what, Body body) {
        try {
            body.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            fail("%s: expected %s, got %s", what, type.getSimpleName(), t);
        }
        throw fail("%s: expected %s, but it succeeded", what, type.getSimpleName());
    }

    /** Polls {@code cond} every 20 ms until it holds; fails after {@link #WAIT_MS}. */
    public static void await(String what, BooleanSupplier cond) throws InterruptedException {
        await(what, WAIT_MS, cond);
    }

    public static void await(String what, long ms, BooleanSupplier cond) throws InterruptedException {
        long end = System.nanoTime() + ms * 1_000_000;
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > end) {
                fail("timed out after %d ms waiting for: %s", ms, what);
            }
            Thread.sleep(20);
        }
    }

    public static void await(String what, CountDownLatch latch) throws InterruptedException {
        that(latch.await(WAIT_MS, TimeUnit.MILLISECONDS), "timed out after %d ms waiting for: %s",
                WAIT_MS, what);
    }

    /** Runs body(0..n-1) on n threads at once and rethrows the first failure. */
    public static void parallel(int n, IndexedBody body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final int idx = i;
                futures.add(pool.submit(() -> {
                    go.await();
                    body.run(idx);
                    return null;
                }));
            }
            go.countDown();
            for (Future<?> f : futures) {
                try {
                    f.get(2 * WAIT_MS, TimeUnit.MILLISECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof Exception) {
                        throw (Exception) c;
                    }
                    throw new RuntimeException(c);
                } catch (java.util.concurrent.TimeoutException e) {
                    fail("a parallel task did not finish within %d ms", 2 * WAIT_MS);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    // ------------------------------------------------------------------ clients

    /** A started Curator client on the server (session timeout 15 s), connected. */
    public static CuratorFramework curator() throws InterruptedException {
        return curator(connect, 15_000);
    }

    public static CuratorFramework curator(String connectString, int sessionMs) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(connectString)
                .sessionTimeoutMs(sessionMs)
                .connectionTimeoutMs(5_000)
                .retryPolicy(new RetryNTimes(100, 200))
                .build();
        c.start();
        synchronized (toClose) {
            toClose.add(c);
        }
        that(c.blockUntilConnected((int) WAIT_MS, TimeUnit.MILLISECONDS),
                "Curator client did not connect to %s", connectString);
        return c;
    }

    /** n started Curator clients, each with its own session. */
    public static CuratorFramework[] curators(int n) throws InterruptedException {
        CuratorFramework[] cs = new CuratorFramework[n];
        for (int i = 0; i < n; i++) {
            cs[i] = curator();
        }
        return cs;
    }

    /**
     * The number of children of a node, 0 if it is gone. Recipes create their parents as
     * containers, which the server reaps (every 500 ms in this suite) once they are empty.
     */
    public static int childCount(CuratorFramework c, String path) throws Exception {
        try {
            return c.getChildren().forPath(path).size();
        } catch (org.apache.zookeeper.KeeperException.NoNodeException reaped) {
            return 0;
        }
    }

    /** A raw ZooKeeper client (session timeout 15 s) whose events are recorded in {@code events}. */
    public static ZooKeeper zk(Events events) throws Exception {
        return zk(connect, 15_000, events);
    }

    public static ZooKeeper zk(String connectString, int sessionMs, Events events) throws Exception {
        ZooKeeper z = new ZooKeeper(connectString, sessionMs, events);
        synchronized (toClose) {
            toClose.add(z::close);
        }
        events.awaitState(Watcher.Event.KeeperState.SyncConnected);
        return z;
    }

    public static void closeAll() {
        List<AutoCloseable> all;
        synchronized (toClose) {
            all = new ArrayList<>(toClose);
            toClose.clear();
        }
        for (int i = all.size() - 1; i >= 0; i--) {
            try {
                all.get(i).close();
            } catch (Exception e) {
                // closing after a failure or an expired session: nothing to check
            }
        }
    }

    /**
     * Expires a session on the server for real: a second connection resumes it with the same id
     * and password (which makes the server drop the first connection) and closes it.
     */
    public static void killSession(ZooKeeper victim) throws Exception {
        long id = victim.getSessionId();
        byte[] pw = victim.getSessionPasswd();
        Events ev = new Events("killer");
        ZooKeeper killer = new ZooKeeper(connect, 15_000, ev, id, pw);
        try {
            ev.awaitState(Watcher.Event.KeeperState.SyncConnected);
            eq(id, killer.getSessionId(), "resumed session id");
        } finally {
            killer.close();
        }
        log("killed session 0x%x", id);
    }

    public static void killSession(CuratorFramework victim) throws Exception {
        killSession(victim.getZookeeperClient().getZooKeeper());
    }

    public interface Call {
        void run() throws Exception;
    }

    /** Retries a call that fails with ConnectionLoss (the client is reconnecting), bounded. */
    public static void retry(String what, Call call) throws Exception {
        long end = System.nanoTime() + WAIT_MS * 1_000_000;
        while (true) {
            try {
                call.run();
                return;
            } catch (org.apache.zookeeper.KeeperException.ConnectionLossException e) {
                that(System.nanoTime() < end, "%s: still ConnectionLoss after %d ms", what, WAIT_MS);
                Thread.sleep(100);
            }
        }
    }

    // ------------------------------------------------------------------ runner control

    /** Asks the runner to "restart", "stop" or "start" the server and waits until it has. */
    public static void action(String what) throws Exception {
        log("asking the runner to %s the server", what);
        System.out.println("@@ACTION " + what);
        System.out.flush();
        if (stdin == null) {
            stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        }
        String line = stdin.readLine();
        that(line != null && line.equals("@@DONE " + what), "runner did not %s the server: %s", what, line);
        log("runner did %s the server", what);
    }

    // ------------------------------------------------------------------ events

    /** A Watcher that records every event, for in-order expectations. */
    public static final class Events implements Watcher {
        private final String name;
        private final BlockingQueue<WatchedEvent> queue = new LinkedBlockingQueue<>();
        private final BlockingQueue<Event.KeeperState> states = new LinkedBlockingQueue<>();
        public volatile Event.KeeperState state = Event.KeeperState.Disconnected;

        public Events(String name) {
            this.name = name;
        }

        @Override
        public void process(WatchedEvent e) {
            if (e.getType() == Event.EventType.None) {
                state = e.getState();
                states.add(e.getState());
            } else {
                queue.add(e);
            }
        }

        /** Waits for the next node event and checks its type and path. */
        public WatchedEvent expect(Event.EventType type, String path) throws InterruptedException {
            WatchedEvent e = queue.poll(WAIT_MS, TimeUnit.MILLISECONDS);
            that(e != null, "%s: no event, expected %s %s", name, type, path);
            that(e.getType() == type && Objects.equals(e.getPath(), path),
                    "%s: expected event %s %s, got %s %s", name, type, path, e.getType(), e.getPath());
            return e;
        }

        /** The next node event, whatever it is. */
        public WatchedEvent next() throws InterruptedException {
            WatchedEvent e = queue.poll(WAIT_MS, TimeUnit.MILLISECONDS);
            that(e != null, "%s: no event", name);
            return e;
        }

        /** Fails if an event is already queued. Use after a marker event to prove absence. */
        public void expectNoneQueued() {
            WatchedEvent e = queue.peek();
            that(e == null, "%s: unexpected event %s %s", name,
                    e == null ? null : e.getType(), e == null ? null : e.getPath());
        }

        /** Waits until a session state event with this state has been seen (consumes up to it). */
        public void awaitState(Event.KeeperState want) throws InterruptedException {
            long end = System.nanoTime() + WAIT_MS * 1_000_000;
            while (true) {
                long left = (end - System.nanoTime()) / 1_000_000;
                Event.KeeperState s = left > 0 ? states.poll(left, TimeUnit.MILLISECONDS) : null;
                that(s != null, "%s: timed out waiting for session state %s (last %s)", name, want, state);
                if (s == want) {
                    return;
                }
            }
        }
    }
}
