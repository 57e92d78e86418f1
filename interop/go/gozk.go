// The Go ZooKeeper client github.com/samuel/go-zookeeper (Debian's
// golang-github-samuel-go-zookeeper-dev) end to end: create/get/set/children/exists/delete,
// ephemeral and sequential nodes, ACLs with digest auth, watches, multi, and the client's own
// lock recipe under contention. Usage: gozk host:port. Prints PASS and exits 0, or prints
// "FAIL: <step>: <what>" and exits 1.
package main

import (
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

const wait = 20 * time.Second

var step = "start"

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		fail(format, args...)
	}
}

func ok(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func wantErr(err, want error, what string) {
	if err != want {
		fail("%s: got error %v, want %v", what, err, want)
	}
}

func connect(addr string) *zk.Conn {
	c, events, err := zk.Connect([]string{addr}, 15*time.Second, zk.WithLogger(log.New(ioutil.Discard, "", 0)))
	ok(err, "connect")
	deadline := time.After(wait)
	for {
		select {
		case e := <-events:
			if e.State == zk.StateHasSession {
				return c
			}
		case <-deadline:
			fail("no session within %v", wait)
		}
	}
}

func expect(ch <-chan zk.Event, typ zk.EventType, path string) {
	select {
	case e := <-ch:
		check(e.Type == typ && e.Path == path, "event %v %s, want %v %s", e.Type, e.Path, typ, path)
	case <-time.After(wait):
		fail("no event, want %v %s", typ, path)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gozk host:port")
		os.Exit(2)
	}
	addr := os.Args[1]
	a := connect(addr)
	b := connect(addr)
	open := zk.WorldACL(zk.PermAll)

	step = "create/get/set/exists/delete"
	p, err := a.Create("/go", []byte("hello"), 0, open)
	ok(err, "create")
	check(p == "/go", "created path %s", p)
	_, err = a.Create("/go", nil, 0, open)
	wantErr(err, zk.ErrNodeExists, "create twice")
	_, err = a.Create("/no/parent", nil, 0, open)
	wantErr(err, zk.ErrNoNode, "create without parent")
	data, st, err := b.Get("/go")
	ok(err, "get")
	check(string(data) == "hello" && st.Version == 0 && st.DataLength == 5, "get: %q v%d", data, st.Version)
	st, err = a.Set("/go", []byte("world"), 0)
	ok(err, "set")
	check(st.Version == 1, "version after set %d", st.Version)
	_, err = a.Set("/go", []byte("x"), 0)
	wantErr(err, zk.ErrBadVersion, "set with a stale version")
	exists, _, err := a.Exists("/missing")
	ok(err, "exists")
	check(!exists, "missing node exists")
	wantErr(a.Delete("/missing", -1), zk.ErrNoNode, "delete missing")

	step = "ephemeral and sequential nodes, children"
	_, err = a.Create("/go/eph", nil, zk.FlagEphemeral, open)
	ok(err, "create ephemeral")
	_, st, err = b.Exists("/go/eph")
	ok(err, "exists ephemeral")
	check(st.EphemeralOwner == a.SessionID(), "ephemeralOwner %x, session %x", st.EphemeralOwner, a.SessionID())
	_, err = a.Create("/go/eph/x", nil, 0, open)
	wantErr(err, zk.ErrNoChildrenForEphemerals, "child of an ephemeral")
	for i := 1; i <= 3; i++ {
		p, err := a.Create("/go/s-", nil, zk.FlagSequence, open)
		ok(err, "create sequential")
		check(p == fmt.Sprintf("/go/s-%010d", i), "sequential name %s", p)
	}
	kids, st, err := b.Children("/go")
	ok(err, "children")
	sort.Strings(kids)
	check(strings.Join(kids, ",") == "eph,s-0000000001,s-0000000002,s-0000000003", "children %v", kids)
	check(st.NumChildren == 4, "numChildren %d", st.NumChildren)
	wantErr(a.Delete("/go", -1), zk.ErrNotEmpty, "delete non-empty")

	step = "ACLs with digest auth"
	ok(a.AddAuth("digest", []byte("alice:secret")), "addauth")
	_, err = a.Create("/go/priv", []byte("p"), 0, zk.DigestACL(zk.PermAll, "alice", "secret"))
	ok(err, "create with a digest ACL")
	_, _, err = b.Get("/go/priv")
	wantErr(err, zk.ErrNoAuth, "read without auth")
	data, _, err = a.Get("/go/priv")
	ok(err, "read with auth")
	check(string(data) == "p", "data %q", data)
	acl, _, err := a.GetACL("/go/priv")
	ok(err, "getACL")
	check(len(acl) == 1 && acl[0].Scheme == "digest" && acl[0].ID == "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
		"acl %+v", acl)
	_, err = b.Create("/go/ro", nil, 0, zk.WorldACL(zk.PermRead))
	ok(err, "create read-only")
	_, err = b.Set("/go/ro", []byte("w"), -1)
	wantErr(err, zk.ErrNoAuth, "write a read-only node")

	step = "watches"
	_, _, ch, err := b.GetW("/go")
	ok(err, "getw")
	_, err = a.Set("/go", []byte("w1"), -1)
	ok(err, "set")
	expect(ch, zk.EventNodeDataChanged, "/go")
	_, _, ch, err = b.ExistsW("/go/new")
	ok(err, "existsw")
	_, err = a.Create("/go/new", nil, 0, open)
	ok(err, "create")
	expect(ch, zk.EventNodeCreated, "/go/new")
	_, _, ch, err = b.ChildrenW("/go/new")
	ok(err, "childrenw")
	_, err = a.Create("/go/new/k", nil, 0, open)
	ok(err, "create child")
	expect(ch, zk.EventNodeChildrenChanged, "/go/new")
	_, _, ch, err = b.GetW("/go/new/k")
	ok(err, "getw")
	ok(a.Delete("/go/new/k", -1), "delete")
	expect(ch, zk.EventNodeDeleted, "/go/new/k")

	step = "multi"
	res, err := a.Multi(
		&zk.CreateRequest{Path: "/go/m", Data: []byte("m"), Acl: open},
		&zk.SetDataRequest{Path: "/go/m", Data: []byte("m1"), Version: 0},
		&zk.CheckVersionRequest{Path: "/go/m", Version: 1},
		&zk.CreateRequest{Path: "/go/m/s-", Acl: open, Flags: zk.FlagSequence},
	)
	ok(err, "multi")
	check(len(res) == 4 && res[0].String == "/go/m" && res[3].String == "/go/m/s-0000000000",
		"multi results %+v", res)
	res, err = a.Multi(
		&zk.CreateRequest{Path: "/go/m2", Acl: open},
		&zk.CheckVersionRequest{Path: "/go/m", Version: 9},
		&zk.DeleteRequest{Path: "/go/m/s-0000000000", Version: -1},
	)
	check(err != nil, "a multi with a bad check succeeded")
	check(len(res) == 3 && res[1].Error == zk.ErrBadVersion, "failed multi results %+v (err %v)", res, err)
	exists, _, err = a.Exists("/go/m2")
	ok(err, "exists")
	check(!exists, "a failed multi was applied")

	step = "sync"
	_, err = b.Sync("/go")
	ok(err, "sync")

	step = "go-zookeeper Lock: mutual exclusion across sessions"
	const workers, rounds = 4, 10
	conns := make([]*zk.Conn, workers)
	for i := range conns {
		conns[i] = connect(addr)
	}
	var mu sync.Mutex
	inside, maxInside, counter := 0, 0, 0
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(c *zk.Conn) {
			defer wg.Done()
			l := zk.NewLock(c, "/go/lock", open)
			for r := 0; r < rounds; r++ {
				if err := l.Lock(); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				inside++
				if inside > maxInside {
					maxInside = inside
				}
				mu.Unlock()
				v := counter // unprotected read-modify-write: only the ZooKeeper lock guards it
				time.Sleep(time.Millisecond)
				counter = v + 1
				mu.Lock()
				inside--
				mu.Unlock()
				if err := l.Unlock(); err != nil {
					errs <- err
					return
				}
			}
		}(conns[i])
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * wait):
		fail("lock workers did not finish")
	}
	close(errs)
	for err := range errs {
		fail("lock: %v", err)
	}
	check(maxInside == 1, "%d holders at once", maxInside)
	check(counter == workers*rounds, "counter %d, want %d", counter, workers*rounds)

	step = "ephemerals go with a closed session"
	_, _, ch, err = b.ExistsW("/go/eph")
	ok(err, "existsw")
	a.Close()
	expect(ch, zk.EventNodeDeleted, "/go/eph")
	for _, c := range conns {
		c.Close()
	}
	b.Close()
	fmt.Println("PASS")
}
