package ftp

// ConnKind says what a Server.WrapListener or Server.WrapConn hook wraps.
type ConnKind uint8

const (
	ControlConn ConnKind = iota + 1 // a control connection or listener
	PassiveConn                     // a passive data connection or listener
	ActiveConn                      // an active (PORT, EPRT) data connection
)

func (k ConnKind) String() string {
	switch k {
	case ControlConn:
		return "control"
	case PassiveConn:
		return "passive"
	case ActiveConn:
		return "active"
	}
	return "ConnKind(?)"
}
