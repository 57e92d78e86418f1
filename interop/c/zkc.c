/*
 * The ZooKeeper 3.8 C client (libzookeeper_mt) end to end: create/get/set/ls/stat/delete,
 * ephemeral and sequential nodes, ACLs with digest auth, watches, multi, async ordering.
 * Usage: zkc host:port. Exits 0 after printing PASS, 1 after "FAIL: <what>".
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper.h>

#define WAIT_S 20

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* Events seen by watchers, as "TYPE path" strings, in order. */
#define MAX_EVENTS 64
static char events[MAX_EVENTS][256];
static int n_events;
static int connected[4];

static const char *step = "start";

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: %s: ", step);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)
#define RC(expr, want) do { int rc_ = (expr); if (rc_ != (want)) \
    fail("%s: rc %d (%s), want %d (%s)", #expr, rc_, zerror(rc_), (want), zerror(want)); } while (0)

static const char *type_name(int type) {
    if (type == ZOO_CREATED_EVENT) return "CREATED";
    if (type == ZOO_DELETED_EVENT) return "DELETED";
    if (type == ZOO_CHANGED_EVENT) return "CHANGED";
    if (type == ZOO_CHILD_EVENT) return "CHILD";
    if (type == ZOO_SESSION_EVENT) return "SESSION";
    return "OTHER";
}

/* The global watcher; context = handle index. */
static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    int idx = (int)(long)ctx;
    pthread_mutex_lock(&mu);
    if (type == ZOO_SESSION_EVENT) {
        connected[idx] = state == ZOO_CONNECTED_STATE;
    } else if (n_events < MAX_EVENTS) {
        snprintf(events[n_events++], 256, "%s %s", type_name(type), path);
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static struct timespec deadline(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_S;
    return ts;
}

static zhandle_t *connect_to(const char *hosts, int idx) {
    zhandle_t *zh = zookeeper_init(hosts, watcher, 15000, 0, (void *)(long)idx, 0);
    CHECK(zh != NULL, "zookeeper_init: %s", strerror(errno));
    struct timespec ts = deadline();
    pthread_mutex_lock(&mu);
    while (!connected[idx]) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            fail("handle %d did not connect", idx);
        }
    }
    pthread_mutex_unlock(&mu);
    return zh;
}

/* Waits for the next watch event and checks it. */
static int next_event;
static void expect_event(const char *want) {
    struct timespec ts = deadline();
    pthread_mutex_lock(&mu);
    while (n_events <= next_event) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            fail("no watch event, expected \"%s\"", want);
        }
    }
    char got[256];
    strcpy(got, events[next_event++]);
    pthread_mutex_unlock(&mu);
    CHECK(strcmp(got, want) == 0, "event \"%s\", expected \"%s\"", got, want);
}

/* A void completion that records rc and signals. */
static int auth_rc = -999;
static void auth_done(int rc, const void *data) {
    (void)data;
    pthread_mutex_lock(&mu);
    auth_rc = rc;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

#define N_ASYNC 100
static int order[N_ASYNC];
static int n_done;
static void create_done(int rc, const char *value, const void *data) {
    (void)value;
    pthread_mutex_lock(&mu);
    order[n_done++] = rc == ZOK ? (int)(long)data : -1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zkc host:port\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    zhandle_t *a = connect_to(argv[1], 0);
    zhandle_t *b = connect_to(argv[1], 1);
    char buf[512];
    int len;
    struct Stat st;

    step = "create/get/set/stat/delete";
    RC(zoo_create(a, "/c", "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    CHECK(strcmp(buf, "/c") == 0, "created path %s", buf);
    RC(zoo_create(a, "/c", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZNODEEXISTS);
    RC(zoo_create(a, "/no/parent", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZNONODE);
    len = sizeof buf;
    RC(zoo_get(a, "/c", 0, buf, &len, &st), ZOK);
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0, "data %.*s", len, buf);
    CHECK(st.version == 0 && st.dataLength == 5 && st.numChildren == 0, "stat v%d len%d n%d",
          st.version, st.dataLength, st.numChildren);
    RC(zoo_set(a, "/c", "world", 5, 0), ZOK);
    RC(zoo_set(a, "/c", "again", 5, 0), ZBADVERSION);
    RC(zoo_exists(a, "/c", 0, &st), ZOK);
    CHECK(st.version == 1, "version after set %d", st.version);
    RC(zoo_exists(a, "/missing", 0, &st), ZNONODE);
    RC(zoo_delete(a, "/missing", -1), ZNONODE);

    step = "ephemeral and sequential nodes, children";
    RC(zoo_create(a, "/c/eph", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, buf, sizeof buf), ZOK);
    RC(zoo_exists(b, "/c/eph", 0, &st), ZOK);
    CHECK(st.ephemeralOwner == zoo_client_id(a)->client_id, "ephemeralOwner %llx",
          (unsigned long long)st.ephemeralOwner);
    RC(zoo_create(a, "/c/eph/x", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZNOCHILDRENFOREPHEMERALS);
    for (int i = 0; i < 3; i++) {
        char want[64];
        RC(zoo_create(a, "/c/s-", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, buf, sizeof buf), ZOK);
        snprintf(want, sizeof want, "/c/s-%010d", i + 1);
        CHECK(strcmp(buf, want) == 0, "sequential name %s, want %s", buf, want);
    }
    struct String_vector kids;
    RC(zoo_get_children(b, "/c", 0, &kids), ZOK);
    CHECK(kids.count == 4, "%d children", kids.count);
    qsort(kids.data, kids.count, sizeof(char *), cmp_str);
    CHECK(strcmp(kids.data[0], "eph") == 0 && strcmp(kids.data[3], "s-0000000003") == 0,
          "children %s .. %s", kids.data[0], kids.data[3]);
    deallocate_String_vector(&kids);
    RC(zoo_delete(a, "/c", -1), ZNOTEMPTY);

    step = "ACLs with digest auth";
    pthread_mutex_lock(&mu);
    auth_rc = -999;
    pthread_mutex_unlock(&mu);
    RC(zoo_add_auth(a, "digest", "alice:secret", 12, auth_done, NULL), ZOK);
    struct timespec ts = deadline();
    pthread_mutex_lock(&mu);
    while (auth_rc == -999) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            fail("add_auth did not complete");
        }
    }
    pthread_mutex_unlock(&mu);
    RC(auth_rc, ZOK);
    RC(zoo_create(a, "/c/priv", "p", 1, &ZOO_CREATOR_ALL_ACL, 0, buf, sizeof buf), ZOK);
    len = sizeof buf;
    RC(zoo_get(b, "/c/priv", 0, buf, &len, NULL), ZNOAUTH);
    len = sizeof buf;
    RC(zoo_get(a, "/c/priv", 0, buf, &len, NULL), ZOK);
    struct ACL_vector acl;
    RC(zoo_get_acl(b, "/c/priv", &acl, &st), ZNOAUTH); /* getACL needs READ or ADMIN */
    RC(zoo_get_acl(a, "/c/priv", &acl, &st), ZOK);
    CHECK(acl.count == 1 && strcmp(acl.data[0].id.scheme, "digest") == 0 &&
          strcmp(acl.data[0].id.id, "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=") == 0 && acl.data[0].perms == ZOO_PERM_ALL,
          "acl %s:%s perms %d", acl.data[0].id.scheme, acl.data[0].id.id, acl.data[0].perms);
    deallocate_ACL_vector(&acl);
    RC(zoo_create(b, "/c/ro", "r", 1, &ZOO_READ_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    RC(zoo_set(b, "/c/ro", "w", 1, -1), ZNOAUTH);
    RC(zoo_create(b, "/c/bad", "r", 1, &ZOO_CREATOR_ALL_ACL, 0, buf, sizeof buf), ZINVALIDACL);

    step = "watches";
    len = sizeof buf;
    RC(zoo_wget(b, "/c", watcher, (void *)1L, buf, &len, NULL), ZOK);
    RC(zoo_set(a, "/c", "w1", 2, -1), ZOK);
    expect_event("CHANGED /c");
    RC(zoo_wexists(b, "/c/new", watcher, (void *)1L, &st), ZNONODE);
    RC(zoo_create(a, "/c/new", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    expect_event("CREATED /c/new");
    RC(zoo_wget_children(b, "/c/new", watcher, (void *)1L, &kids), ZOK);
    deallocate_String_vector(&kids);
    RC(zoo_create(a, "/c/new/k", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    expect_event("CHILD /c/new");
    RC(zoo_wexists(b, "/c/new/k", watcher, (void *)1L, &st), ZOK);
    RC(zoo_delete(a, "/c/new/k", -1), ZOK);
    expect_event("DELETED /c/new/k");

    step = "multi";
    {
        zoo_op_t ops[4];
        zoo_op_result_t res[4];
        char p0[64], p3[64];
        zoo_create_op_init(&ops[0], "/c/m", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p0, sizeof p0);
        zoo_set_op_init(&ops[1], "/c/m", "m1", 2, 0, NULL);
        zoo_check_op_init(&ops[2], "/c/m", 1);
        zoo_create_op_init(&ops[3], "/c/m/s-", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, p3, sizeof p3);
        RC(zoo_multi(a, 4, ops, res), ZOK);
        for (int i = 0; i < 4; i++) {
            CHECK(res[i].err == ZOK, "op %d err %d", i, res[i].err);
        }
        CHECK(strcmp(p0, "/c/m") == 0 && strcmp(p3, "/c/m/s-0000000000") == 0, "multi paths %s %s", p0, p3);

        zoo_op_t bad[3];
        zoo_op_result_t bres[3];
        char q0[64];
        zoo_create_op_init(&bad[0], "/c/m2", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, q0, sizeof q0);
        zoo_check_op_init(&bad[1], "/c/m", 7);
        zoo_delete_op_init(&bad[2], "/c/m/s-0000000000", -1);
        RC(zoo_multi(a, 3, bad, bres), ZBADVERSION);
        CHECK(bres[0].err == ZOK && bres[1].err == ZBADVERSION && bres[2].err == ZRUNTIMEINCONSISTENCY,
              "failed multi results %d %d %d", bres[0].err, bres[1].err, bres[2].err);
        RC(zoo_exists(a, "/c/m2", 0, &st), ZNONODE);
        RC(zoo_exists(a, "/c/m/s-0000000000", 0, &st), ZOK);
    }

    step = "async calls complete in order";
    RC(zoo_create(a, "/c/async", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, buf, sizeof buf), ZOK);
    for (long i = 0; i < N_ASYNC; i++) {
        char p[64];
        snprintf(p, sizeof p, "/c/async/n%ld", i);
        RC(zoo_acreate(a, p, "v", 1, &ZOO_OPEN_ACL_UNSAFE, 0, create_done, (void *)i), ZOK);
    }
    ts = deadline();
    pthread_mutex_lock(&mu);
    while (n_done < N_ASYNC) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            fail("only %d of %d async creates completed", n_done, N_ASYNC);
        }
    }
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < N_ASYNC; i++) {
        CHECK(order[i] == i, "completion %d was for create %d", i, order[i]);
    }

    step = "ephemerals go with a closed session";
    RC(zoo_wexists(b, "/c/eph", watcher, (void *)1L, &st), ZOK);
    RC(zookeeper_close(a), ZOK);
    expect_event("DELETED /c/eph");
    RC(zoo_exists(b, "/c/eph", 0, &st), ZNONODE);
    RC(zookeeper_close(b), ZOK);
    printf("PASS\n");
    return 0;
}
