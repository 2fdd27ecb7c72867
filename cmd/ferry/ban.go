package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/escape"
)

const banUsage = `Usage:
  ferry ban list                                   list active bans
  ferry ban add IP [--for DURATION] [--reason TEXT]   ban an address (default for 24h)
  ferry ban del IP                                 lift a ban and forget the address's history

Every command takes --data DIR (default ./ferry-data) and --database URL;
bans are kept with the users in the database --database names (else
$FERRY_DATABASE, else sqlite:users.db: DIR/users.db), the server's [database]
url, which running servers share, and changes reach them within a second. IPv6 clients are banned per /64: any address of the network names it.
Bans are enforced only while ban_threshold is above 0.
`

// banCommand is one `ferry ban` subcommand.
type banCommand struct {
	args  string // positional arguments, for usage: "IP" or ""
	flags bool   // takes --for and --reason
	run   func(c *banRun) error
}

var banCommands = map[string]banCommand{
	"list": {run: (*banRun).list},
	"add":  {args: "IP", flags: true, run: (*banRun).add},
	"del":  {args: "IP", run: (*banRun).del},
}

// banRun is one `ferry ban` invocation after its arguments are parsed.
type banRun struct {
	ctx      context.Context
	data     string
	database string     // the database url (cliDatabaseURL)
	ip       netip.Addr // the key (see ban.Key) of IP, for add and del
	dur      time.Duration
	reason   string
	stdout   io.Writer
}

// runBan runs `ferry ban SUBCOMMAND ...` (args start after "ban") and
// returns the exit status: 0 on success, 1 on failure, 2 on a usage error.
// Flags may come before or after IP.
func runBan(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, banUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, banUsage)
		return 0
	}
	cmd, ok := banCommands[sub]
	if !ok {
		fmt.Fprintf(stderr, "ferry ban: unknown command %q\n%s", sub, banUsage)
		return 2
	}

	c := &banRun{ctx: context.Background(), stdout: stdout}
	fset := flag.NewFlagSet("ferry ban "+sub, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&c.data, "data", config.Defaults().Data, "data `DIR`; a relative sqlite:PATH is inside it")
	fset.StringVar(&c.database, "database", "", databaseFlagHelp)
	if cmd.flags {
		fset.DurationVar(&c.dur, "for", 24*time.Hour, "how long the ban lasts (`DURATION` like 90m or 48h)")
		fset.StringVar(&c.reason, "reason", "added by an operator", "why, as shown by ferry ban list")
	}
	fset.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ferry ban %s\n", strings.Join(strings.Fields(sub+" "+cmd.args+" [flags]"), " "))
		fset.PrintDefaults()
	}
	pos, err := parseInterleaved(fset, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	want := len(strings.Fields(cmd.args))
	if len(pos) != want {
		if len(pos) < want {
			fmt.Fprintf(stderr, "ferry ban %s: missing %s\n", sub, cmd.args)
		} else {
			fmt.Fprintf(stderr, "ferry ban %s: unexpected argument %q\n", sub, pos[want])
		}
		fset.Usage()
		return 2
	}
	if want == 1 {
		if c.ip, err = parseBanTarget(pos[0]); err != nil {
			fmt.Fprintf(stderr, "ferry ban %s: %s\n", sub, errText(err))
			return 2
		}
	}
	c.database = cliDatabaseURL(c.database)
	if cmd.flags && c.dur <= 0 {
		fmt.Fprintf(stderr, "ferry ban %s: --for must be positive\n", sub)
		return 2
	}

	if err := cmd.run(c); err != nil {
		fmt.Fprintf(stderr, "ferry ban %s: %s\n", sub, errText(err))
		return 1
	}
	return 0
}

// parseBanTarget reads an address, or the network a ban covers written as a
// prefix (192.0.2.1/32, 2001:db8::/64), and returns its ban key. Wider
// prefixes are refused rather than silently banning their first address.
func parseBanTarget(s string) (netip.Addr, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("not an IP address: %q", s)
		}
		return ban.Key(ip), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address or network: %q", s)
	}
	key := ban.Key(p.Addr())
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	if bits != ban.Network(key).Bits() {
		return netip.Addr{}, fmt.Errorf("%s: bans cover one IPv4 address (/32) or one IPv6 /64", s)
	}
	return key, nil
}

// open opens the database and its ban store; closing the store closes the
// database. Only add creates a SQLite database (and the data directory):
// reading commands must not leave an empty database behind a mistyped
// --data, and get an error wrapping fs.ErrNotExist instead.
func (c *banRun) open(create bool) (*ban.SQLStore, error) {
	d, err := openDatabase(c.ctx, c.data, c.database, db.Options{MustExist: !create})
	if err != nil {
		return nil, err
	}
	return ban.OwningSQLStore(d), nil
}

func (c *banRun) list() error {
	store, err := c.open(false)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(c.stdout, "no bans")
		return nil
	}
	if err != nil {
		return err
	}
	defer store.Close()
	bans, err := store.List(c.ctx)
	if err != nil {
		return err
	}
	if len(bans) == 0 {
		fmt.Fprintln(c.stdout, "no bans")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tUNTIL\tCOUNT\tREASON")
	for _, b := range bans {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", banTarget(b.IP), b.Until.Local().Format(time.RFC3339), b.Count, escape.Display(b.Reason))
	}
	return tw.Flush()
}

// banTarget shows what a ban covers: the address, or the IPv6 /64.
func banTarget(key netip.Addr) string {
	if key.Is4() {
		return key.String()
	}
	return ban.Network(key).String()
}

func (c *banRun) add() error {
	store, err := c.open(true)
	if err != nil {
		return err
	}
	defer store.Close()
	// Count on from the address's history, so a later automatic ban of it
	// escalates as it would have.
	count := 1
	if prev, ok, err := store.Last(c.ctx, c.ip); err != nil {
		return err
	} else if ok {
		count = prev.Count + 1
	}
	b := ban.Ban{IP: c.ip, Until: time.Now().Add(c.dur), Count: count, Reason: c.reason}
	if err := store.Put(c.ctx, b); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "banned %s until %s\n", banTarget(c.ip), b.Until.Local().Format(time.RFC3339))
	return nil
}

func (c *banRun) del() error {
	store, err := c.open(false)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not banned", banTarget(c.ip))
	}
	if err != nil {
		return err
	}
	defer store.Close()
	// An ended ban still counts towards escalation; deleting it is a pardon.
	if _, ok, err := store.Last(c.ctx, c.ip); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s is not banned", banTarget(c.ip))
	}
	if err := store.Delete(c.ctx, c.ip); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "unbanned %s\n", banTarget(c.ip))
	return nil
}
