// The Go client (samuel/go-zookeeper) across a server restart: the runner restarts the server
// (same port and dataDir) while the client holds a session with an ephemeral node and watches.
// The client reconnects to the same session, re-registers its watches (SetWatches) and gets the
// events of changes made after the restart. Usage: gorestart host:port.
package main

import (
	"bufio"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"strings"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

const wait = 30 * time.Second

var step = "start"

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func ok(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		fail(format, args...)
	}
}

// action asks the runner to act on the server and waits for its answer on stdin.
func action(in *bufio.Reader, what string) {
	fmt.Printf("@@ACTION %s\n", what)
	line, err := in.ReadString('\n')
	ok(err, "reading the runner's answer")
	check(strings.TrimSpace(line) == "@@DONE "+what, "runner answered %q", line)
}

func main() {
	addr := os.Args[1]
	in := bufio.NewReader(os.Stdin)
	c, events, err := zk.Connect([]string{addr}, 30*time.Second, zk.WithLogger(log.New(ioutil.Discard, "", 0)))
	ok(err, "connect")
	states := make(chan zk.State, 100)
	go func() {
		for e := range events {
			if e.Type == zk.EventSession {
				states <- e.State
			}
		}
	}()
	awaitState := func(want zk.State) {
		deadline := time.After(wait)
		for {
			select {
			case s := <-states:
				if s == want {
					return
				}
			case <-deadline:
				fail("session state %v not reached", want)
			}
		}
	}
	awaitState(zk.StateHasSession)
	open := zk.WorldACL(zk.PermAll)

	step = "before the restart"
	_, err = c.Create("/gr", []byte("durable"), 0, open)
	ok(err, "create")
	_, err = c.Create("/gr/eph", []byte("mine"), zk.FlagEphemeral, open)
	ok(err, "create ephemeral")
	_, _, dataWatch, err := c.GetW("/gr")
	ok(err, "getw")
	_, _, existsWatch, err := c.ExistsW("/gr/later")
	ok(err, "existsw")
	sid := c.SessionID()

	step = "server restart"
	action(in, "restart")
	awaitState(zk.StateHasSession)
	check(c.SessionID() == sid, "session %x after the restart, was %x", c.SessionID(), sid)

	step = "after the restart"
	data, _, err := c.Get("/gr")
	ok(err, "get")
	check(string(data) == "durable", "data %q", data)
	_, st, err := c.Exists("/gr/eph")
	ok(err, "exists ephemeral")
	check(st != nil && st.EphemeralOwner == sid, "ephemeral lost or re-owned: %+v", st)
	_, err = c.Set("/gr", []byte("after"), -1)
	ok(err, "set")
	select {
	case e := <-dataWatch:
		check(e.Type == zk.EventNodeDataChanged && e.Path == "/gr", "event %+v", e)
	case <-time.After(wait):
		fail("the data watch set before the restart did not fire")
	}
	_, err = c.Create("/gr/later", nil, 0, open)
	ok(err, "create")
	select {
	case e := <-existsWatch:
		check(e.Type == zk.EventNodeCreated && e.Path == "/gr/later", "event %+v", e)
	case <-time.After(wait):
		fail("the exists watch set before the restart did not fire")
	}
	c.Close()
	fmt.Println("PASS")
}
