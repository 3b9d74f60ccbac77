package system

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"citybrain/api"
	"citybrain/ingest/natsin"
)

// The account layout of CityBrain's NATS (embedded, and documented in docs/security.md for an outside
// cluster): the process itself may do anything; feeds may only publish to the ingest subjects and read the
// answers; nobody else may touch the log (citybrain.log.>), JetStream's API ($JS.API.>) or the process's own
// inboxes (InternalInbox).
const (
	// InternalInbox is the inbox prefix of the process's own connection: JetStream answers and the log's
	// deliveries go there, out of reach of feeds (who may subscribe to _INBOX.> for their answers).
	InternalInbox = "_CB_INTERNAL"
	natsUserSelf  = "citybrain"
)

// OutSubjects are what CityBrain publishes for others (CAP alerts on citybrain.out.cap): readers may
// subscribe to them.
const OutSubjects = "citybrain.out.>"

// feedPermissions are what an ingest publisher may do: publish events, read the answers.
func feedPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{natsin.SubjectPrefix + ">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// readerPermissions are what a reading role may do: subscribe to what CityBrain publishes.
func readerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Deny: []string{">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{OutSubjects, "_INBOX.>"}},
	}
}

// openPermissions are an anonymous client's on a server without an auth config (loopback only): like
// HTTP there, ingest and reading are open.
func openPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{natsin.SubjectPrefix + ">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{OutSubjects, "_INBOX.>"}},
	}
}

// natsAuth authenticates every client of the embedded server (server.Authentication). The in-process
// connection presents the process's secret; an outside client presents a token of the auth config (as its
// auth token or its password): role feed may publish to citybrain.in.>, reading roles may subscribe to
// citybrain.out.>, role admin may do anything (the export and replay tools reading a running installation's
// log). Without an auth config (the server then listens on loopback only) a client without a token may
// publish events and read citybrain.out.>.
type natsAuth struct {
	secret string
	auth   *api.Auth
	open   bool
}

func newNATSAuth(auth *api.Auth) (*natsAuth, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("cannot make the NATS secret: %w", err)
	}
	return &natsAuth{secret: hex.EncodeToString(b), auth: auth, open: !auth.Configured()}, nil
}

// Check implements server.Authentication.
func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	tok := o.Token
	if tok == "" {
		tok = o.Password
	}
	if tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.secret)) == 1 {
		c.RegisterUser(&server.User{Username: natsUserSelf})
		return true
	}
	if tok == "" {
		if !a.open {
			return false
		}
		c.RegisterUser(&server.User{Username: "anonymous", Permissions: openPermissions()})
		return true
	}
	p, ok := a.auth.Lookup(tok)
	if !ok {
		return false
	}
	switch p.Role {
	case api.RoleAdmin:
		c.RegisterUser(&server.User{Username: p.Name})
	case api.RoleFeed:
		c.RegisterUser(&server.User{Username: p.Name, Permissions: feedPermissions()})
	default: // viewer, police, commander, planner
		c.RegisterUser(&server.User{Username: p.Name, Permissions: readerPermissions()})
	}
	return true
}

// redactURL hides the credentials of a NATS URL list for messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if pu, err := url.Parse(strings.TrimSpace(p)); err == nil && pu.User != nil {
			pu.User = url.User("***")
			parts[i] = pu.String()
		}
	}
	return strings.Join(parts, ",")
}
