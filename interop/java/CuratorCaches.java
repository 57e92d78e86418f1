import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.cache.TreeCacheEvent;

/** Curator 5.4 CuratorCache and TreeCache: initial load, create/change/delete events, nested nodes. */
public final class CuratorCaches {
    static String next(BlockingQueue<String> q) throws InterruptedException {
        String s = q.poll(Check.WAIT_MS, TimeUnit.MILLISECONDS);
        Check.that(s != null, "no cache event");
        return s;
    }

    static String data(ChildData d) {
        return d == null || d.getData() == null ? "" : new String(d.getData());
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework writer = Check.curator();
            CuratorFramework reader = Check.curator();

            Check.step("CuratorCache: initial content and events", () -> {
                writer.create().creatingParentsIfNeeded().forPath("/cache/a", "a0".getBytes());
                writer.create().forPath("/cache/b", "b0".getBytes());
                BlockingQueue<String> events = new LinkedBlockingQueue<>();
                CuratorCache cache = CuratorCache.build(reader, "/cache");
                cache.listenable().addListener(CuratorCacheListener.builder()
                        .forCreates(d -> events.add("created " + d.getPath() + " " + data(d)))
                        .forChanges((o, d) -> events.add("changed " + d.getPath() + " " + data(o) + "->" + data(d)))
                        .forDeletes(d -> events.add("deleted " + d.getPath()))
                        .forInitialized(() -> events.add("initialized"))
                        .build());
                cache.start();
                java.util.Set<String> initial = new java.util.TreeSet<>();
                for (int i = 0; i < 3; i++) {
                    initial.add(next(events));
                }
                Check.eq(new java.util.TreeSet<>(java.util.List.of("created /cache ", "created /cache/a a0",
                        "created /cache/b b0")), initial, "initial events");
                Check.eq("initialized", next(events), "after the initial load");
                writer.setData().forPath("/cache/a", "a1".getBytes());
                Check.eq("changed /cache/a a0->a1", next(events), "change event");
                writer.create().forPath("/cache/a/deep", "d".getBytes());
                Check.eq("created /cache/a/deep d", next(events), "nested create event");
                writer.delete().forPath("/cache/a/deep");
                Check.eq("deleted /cache/a/deep", next(events), "nested delete event");
                writer.delete().forPath("/cache/b");
                Check.eq("deleted /cache/b", next(events), "delete event");
                Check.eq("a1", data(cache.get("/cache/a").orElse(null)), "cached data");
                Check.that(cache.get("/cache/b").isEmpty(), "deleted node still cached");
                Check.eq(2L, cache.stream().count(), "cached nodes");
                cache.close();
            });

            Check.step("PathChildrenCache and NodeCache (deprecated, still widely used)", () -> {
                writer.create().forPath("/pcc");
                BlockingQueue<String> events = new LinkedBlockingQueue<>();
                @SuppressWarnings("deprecation")
                org.apache.curator.framework.recipes.cache.PathChildrenCache pcc =
                        new org.apache.curator.framework.recipes.cache.PathChildrenCache(reader, "/pcc", true);
                pcc.getListenable().addListener((c, e) -> events.add(e.getType() + (e.getData() == null ? ""
                        : " " + e.getData().getPath() + " " + data(e.getData()))));
                pcc.start(org.apache.curator.framework.recipes.cache.PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
                Check.eq("INITIALIZED", next(events), "initialized");
                writer.create().forPath("/pcc/a", "1".getBytes());
                Check.eq("CHILD_ADDED /pcc/a 1", next(events), "child added");
                writer.setData().forPath("/pcc/a", "2".getBytes());
                Check.eq("CHILD_UPDATED /pcc/a 2", next(events), "child updated");
                writer.delete().forPath("/pcc/a");
                Check.eq("CHILD_REMOVED /pcc/a 2", next(events), "child removed");
                pcc.close();

                BlockingQueue<String> nodeEvents = new LinkedBlockingQueue<>();
                @SuppressWarnings("deprecation")
                org.apache.curator.framework.recipes.cache.NodeCache nc =
                        new org.apache.curator.framework.recipes.cache.NodeCache(reader, "/nc");
                nc.getListenable().addListener(() -> nodeEvents.add(nc.getCurrentData() == null ? "gone"
                        : data(nc.getCurrentData())));
                nc.start(true);
                writer.create().forPath("/nc", "x".getBytes());
                Check.eq("x", next(nodeEvents), "NodeCache sees the create");
                writer.setData().forPath("/nc", "y".getBytes());
                Check.eq("y", next(nodeEvents), "NodeCache sees the change");
                writer.delete().forPath("/nc");
                Check.eq("gone", next(nodeEvents), "NodeCache sees the delete");
                nc.close();
            });

            Check.step("TreeCache: events and current children", () -> {
                BlockingQueue<String> events = new LinkedBlockingQueue<>();
                TreeCache tc = TreeCache.newBuilder(reader, "/tree").setCacheData(true).build();
                tc.getListenable().addListener((c, e) -> {
                    if (e.getType() == TreeCacheEvent.Type.INITIALIZED) {
                        events.add("INITIALIZED");
                    } else if (e.getData() != null) {
                        events.add(e.getType() + " " + e.getData().getPath() + " " + data(e.getData()));
                    }
                });
                tc.start();
                Check.eq("INITIALIZED", next(events), "empty tree initialized");
                writer.create().forPath("/tree", "t".getBytes());
                Check.eq("NODE_ADDED /tree t", next(events), "root added");
                writer.create().forPath("/tree/x", "x0".getBytes());
                Check.eq("NODE_ADDED /tree/x x0", next(events), "child added");
                writer.setData().forPath("/tree/x", "x1".getBytes());
                Check.eq("NODE_UPDATED /tree/x x1", next(events), "child updated");
                writer.create().forPath("/tree/x/y", "y".getBytes());
                Check.eq("NODE_ADDED /tree/x/y y", next(events), "grandchild added");
                Map<String, ChildData> kids = tc.getCurrentChildren("/tree/x");
                Check.eq(java.util.Set.of("y"), kids.keySet(), "current children");
                writer.delete().deletingChildrenIfNeeded().forPath("/tree/x");
                Check.eq("NODE_REMOVED /tree/x/y y", next(events), "grandchild removed first");
                Check.eq("NODE_REMOVED /tree/x x1", next(events), "child removed");
                tc.close();
            });
        });
    }
}
