package wire

import "strconv"

// Status is the outcome code of a request (RESULT, DB-OUTCOME) and the
// reason code of a CLOSE. It implements error so that a status can travel up
// a call chain and be tested with errors.Is.
//
// Values cross the wire and are append-only: never reorder, renumber or
// reuse them; add new ones only at the end of their class. The high byte is
// the class, so that a receiver can act on a code it does not know:
//
//	0x00xx  success
//	0x01xx  temporary failure: the same request may succeed later
//	0x02xx  permanent failure: repeating the request will not help
//	0x03xx–0xFFxx  unassigned; a receiver treats them as permanent failures
type Status uint16

// Success.
const (
	StatusOK        Status = 0x0000 // done; also the code of a normal CLOSE
	StatusDelivered Status = 0x0001 // message delivered to Count sessions
	StatusStored    Status = 0x0002 // message stored for offline delivery
	StatusPending   Status = 0x0003 // accepted, waiting for the user (a subscription awaiting approval)
)

// Temporary failures.
const (
	StatusOffline      Status = 0x0100 // recipient offline, message not stored
	StatusRateLimited  Status = 0x0101 // sender or domain over its rate limit
	StatusBusy         Status = 0x0102 // server overloaded, or too many connections
	StatusTimeout      Status = 0x0103 // no answer in time
	StatusUnreachable  Status = 0x0104 // the remote domain's servers could not be reached
	StatusShuttingDown Status = 0x0105 // the server is going away (CLOSE)
	StatusIdle         Status = 0x0106 // connection closed after inactivity (CLOSE)
	StatusInternal     Status = 0x0107 // the server failed; try later
)

// Permanent failures.
const (
	StatusBadRequest    Status = 0x0200 // malformed or invalid record
	StatusUnsupported   Status = 0x0201 // a must-understand record or field is not understood
	StatusVersion       Status = 0x0202 // no common protocol version (CLOSE)
	StatusUnknownUser   Status = 0x0203 // no such user at the domain
	StatusRelayDenied   Status = 0x0204 // the recipient's domain is not served here (§4.3.3)
	StatusNotAuthorized Status = 0x0205 // sender domain not authenticated, or access denied
	StatusTooLarge      Status = 0x0206 // frame or message over the limit
	StatusRefused       Status = 0x0207 // refused by policy (block list, privacy)
	StatusNoService     Status = 0x0208 // the domain publishes no IMX service
	StatusProtocolError Status = 0x0209 // the peer broke the protocol (CLOSE)
	StatusNotSubscribed Status = 0x020A // NOTIFY or UNSUBSCRIBE without a subscription
	StatusAuthFailed    Status = 0x020B // dial-back or login failed
)

var statusNames = map[Status]string{
	StatusOK:            "ok",
	StatusDelivered:     "delivered",
	StatusStored:        "stored",
	StatusPending:       "pending",
	StatusOffline:       "offline",
	StatusRateLimited:   "rate-limited",
	StatusBusy:          "busy",
	StatusTimeout:       "timeout",
	StatusUnreachable:   "unreachable",
	StatusShuttingDown:  "shutting-down",
	StatusIdle:          "idle",
	StatusInternal:      "internal-error",
	StatusBadRequest:    "bad-request",
	StatusUnsupported:   "unsupported",
	StatusVersion:       "version-unsupported",
	StatusUnknownUser:   "unknown-user",
	StatusRelayDenied:   "relay-denied",
	StatusNotAuthorized: "not-authorized",
	StatusTooLarge:      "too-large",
	StatusRefused:       "refused",
	StatusNoService:     "no-service",
	StatusProtocolError: "protocol-error",
	StatusNotSubscribed: "not-subscribed",
	StatusAuthFailed:    "auth-failed",
}

// Statuses returns every status this package names, in numeric order.
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames))
	for c := 0; c <= 0x02FF; c++ {
		if _, ok := statusNames[Status(c)]; ok {
			out = append(out, Status(c))
		}
	}
	return out
}

// String returns the status name ("unknown-user"), or "status-0xNNNN" for a
// code this package does not know.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "status-0x" + strconv.FormatUint(uint64(s)|0x10000, 16)[1:]
}

// Error implements error: "imx: unknown-user".
func (s Status) Error() string { return "imx: " + s.String() }

// Success reports whether s is in the success class.
func (s Status) Success() bool { return s>>8 == 0 }

// Temporary reports whether s is a temporary failure, after which the same
// request may succeed.
func (s Status) Temporary() bool { return s>>8 == 1 }

// Permanent reports whether s is a permanent failure. Codes outside the
// three assigned classes count as permanent.
func (s Status) Permanent() bool { return s>>8 >= 2 }

// Known reports whether this package names the status.
func (s Status) Known() bool { _, ok := statusNames[s]; return ok }

// ParseStatus returns the status with the given name.
func ParseStatus(name string) (Status, bool) {
	for s, n := range statusNames {
		if n == name {
			return s, true
		}
	}
	return 0, false
}
