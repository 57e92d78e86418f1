import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;

/** Curator 5.4 service discovery (curator-x-discovery): register, query, provider, cache, session loss. */
public final class CuratorDiscovery {
    public static final class Payload {
        public String zone;

        public Payload() {}

        Payload(String zone) {
            this.zone = zone;
        }
    }

    static ServiceDiscovery<Payload> discovery(CuratorFramework c) throws Exception {
        ServiceDiscovery<Payload> d = ServiceDiscoveryBuilder.builder(Payload.class).client(c).basePath("/services")
                .serializer(new JsonInstanceSerializer<>(Payload.class)).build();
        d.start();
        return d;
    }

    static ServiceInstance<Payload> instance(String id, int port, String zone) throws Exception {
        return ServiceInstance.<Payload>builder().name("api").id(id).address("127.0.0.1").port(port)
                .payload(new Payload(zone)).build();
    }

    static Set<String> ids(Collection<ServiceInstance<Payload>> is) {
        Set<String> s = new HashSet<>();
        for (ServiceInstance<Payload> i : is) {
            s.add(i.getId());
        }
        return s;
    }

    public static void main(String[] args) {
        Check.run(args, () -> {
            CuratorFramework ca = Check.curator();
            CuratorFramework cb = Check.curator();
            CuratorFramework cq = Check.curator();
            ServiceDiscovery<Payload> da = discovery(ca);
            ServiceDiscovery<Payload> db = discovery(cb);
            ServiceDiscovery<Payload> query = discovery(cq);

            Check.step("register and query", () -> {
                da.registerService(instance("a1", 8001, "east"));
                da.registerService(instance("a2", 8002, "west"));
                db.registerService(instance("b1", 8003, "east"));
                Check.eq(List.of("api"), new ArrayList<>(query.queryForNames()), "service names");
                Check.eq(Set.of("a1", "a2", "b1"), ids(query.queryForInstances("api")), "instances");
                ServiceInstance<Payload> b1 = query.queryForInstance("api", "b1");
                Check.eq(8003, b1.getPort(), "port");
                Check.eq("east", b1.getPayload().zone, "payload round trip (JSON)");
            });

            Check.step("ServiceProvider and ServiceCache", () -> {
                ServiceProvider<Payload> p = query.serviceProviderBuilder().serviceName("api").build();
                p.start();
                Set<String> seen = new HashSet<>();
                for (int i = 0; i < 9; i++) {
                    seen.add(p.getInstance().getId());
                }
                Check.eq(Set.of("a1", "a2", "b1"), seen, "round robin visits every instance");
                ServiceCache<Payload> cache = query.serviceCacheBuilder().name("api").build();
                cache.start();
                Check.await("cache holds 3", () -> cache.getInstances().size() == 3);
                da.unregisterService(instance("a2", 8002, "west"));
                Check.await("cache drops an unregistered instance", () -> ids(cache.getInstances()).equals(Set.of("a1", "b1")));
                p.close();
                cache.close();
            });

            Check.step("instances re-registered after session expiry, gone with a closed session", () -> {
                long before = cb.getZookeeperClient().getZooKeeper().getSessionId();
                Check.killSession(cb);
                Check.await("b1 registered again under the new session", () -> {
                    try {
                        return cb.getZookeeperClient().getZooKeeper().getSessionId() != before
                                && ids(query.queryForInstances("api")).contains("b1")
                                && cq.checkExists().forPath("/services/api/b1").getEphemeralOwner() != before;
                    } catch (Exception e) {
                        return false;
                    }
                });
                cb.close(); // the session ends: its instances disappear
                Check.await("b1 disappears with its session", () -> {
                    try {
                        return ids(query.queryForInstances("api")).equals(Set.of("a1"));
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
            });
        });
    }
}
