import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A loopback TCP proxy in front of the server, so a scenario can cut its clients' connections
 * (a network failure) without touching the server: {@link #block} drops every proxied connection
 * and refuses new ones until {@link #unblock}. The server sees the connection close; sessions
 * live on for their timeout, as after a real network partition.
 */
public final class Proxy implements Closeable {
    private final ServerSocket listener;
    private final String host;
    private final int port;
    private final Set<Socket> live = ConcurrentHashMap.newKeySet();
    private volatile boolean blocked;
    private volatile boolean closed;

    /** target is "host:port". */
    public Proxy(String target) throws IOException {
        int colon = target.lastIndexOf(':');
        host = target.substring(0, colon);
        port = Integer.parseInt(target.substring(colon + 1).replaceAll("/.*", ""));
        listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread t = new Thread(this::acceptLoop, "proxy-accept");
        t.setDaemon(true);
        t.start();
    }

    public String connectString() {
        return "127.0.0.1:" + listener.getLocalPort();
    }

    /** Drops all current connections and refuses new ones. */
    public void block() {
        blocked = true;
        dropAll();
        Check.log("proxy: blocked, connections dropped");
    }

    public void unblock() {
        blocked = false;
        Check.log("proxy: unblocked");
    }

    public void dropAll() {
        for (Socket s : live) {
            quietClose(s);
        }
        live.clear();
    }

    @Override
    public void close() {
        closed = true;
        quietClose(listener);
        dropAll();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket client;
            try {
                client = listener.accept();
            } catch (IOException e) {
                return;
            }
            if (blocked) {
                quietClose(client);
                continue;
            }
            Socket server;
            try {
                server = new Socket(host, port);
            } catch (IOException e) {
                quietClose(client);
                continue;
            }
            live.add(client);
            live.add(server);
            pump(client, server);
            pump(server, client);
        }
    }

    private void pump(Socket from, Socket to) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[65536];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                int n;
                while ((n = in.read(buf)) >= 0) {
                    out.write(buf, 0, n);
                    out.flush();
                }
            } catch (IOException e) {
                // connection cut: close both sides below
            } finally {
                quietClose(from);
                quietClose(to);
                live.remove(from);
                live.remove(to);
            }
        }, "proxy-pump");
        t.setDaemon(true);
        t.start();
    }

    private static void quietClose(Closeable c) {
        try {
            c.close();
        } catch (IOException e) {
            // already closed
        }
    }
}
