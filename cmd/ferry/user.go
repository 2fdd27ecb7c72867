package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/quota/sqlquota"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
	"golang.org/x/term"
)

const userUsage = `Usage:
  ferry user add NAME [--home DIR] [--password-stdin] [--storage s3]   create a user
  ferry user list                                       list users
  ferry user passwd NAME [--password-stdin]             change a user's password
  ferry user del NAME                                   delete a user (the home directory is kept)
  ferry user disable NAME                               refuse the user's logins
  ferry user enable NAME                                allow the user's logins again
  ferry user set NAME [--quota-bytes N] [--perms SPEC] ...  change per-user settings (see ferry user set -h)
  ferry user show NAME [--config FILE]                  print every setting of a user
  ferry user quota-scan NAME [--config FILE]            count the home again and make it the quota usage

Every command takes --data DIR (default ./ferry-data) and --database URL;
users are kept in the database --database names (else $FERRY_DATABASE, else
sqlite:users.db: DIR/users.db), the server's [database] url: a sqlite:PATH
or a postgres:// url, and a new user's home defaults to DIR/home/NAME. With
--storage s3 a home is a key prefix in the server's bucket (default
home/NAME, kept as /home/NAME), made at the first login; a user added
without it gets DIR/home/NAME, which a server on S3 takes as home/NAME. The password is
asked twice on a terminal, or read as one line from standard input. A running
server sees every change at the next login.
`

// openUserStore opens the database named by url (see cliDatabaseURL; a
// relative sqlite:PATH is inside dataDir), creating the data directory
// (0700) and a new SQLite database. o holds the store's options. Closing the
// store closes the database.
func openUserStore(dataDir, url string, o sqlstore.Options) (*sqlstore.Store, error) {
	d, err := openDatabase(context.Background(), dataDir, url, db.Options{})
	if err != nil {
		return nil, err
	}
	return sqlstore.Owning(d, o), nil
}

// checkHome refuses a home that would expose the server's own files.
func (c *userRun) checkHome(home string) error {
	if err := local.CheckRoot(home, protectedPaths(c.data, c.database, "")); err != nil {
		return fmt.Errorf("home %s refused: it is or contains the data directory, the TLS key's directory or the user database, which the user could then download; choose a directory outside them (the default is DATA/home/NAME)", escape.Display(home))
	}
	return nil
}

// userCommand is one `ferry user` subcommand.
type userCommand struct {
	args     string // positional arguments, for usage: "NAME" or ""
	home     bool   // takes --home and --storage
	password bool   // takes --password-stdin
	// flags registers the command's own flags, if any.
	flags func(fs *flag.FlagSet, c *userRun)
	run   func(c *userRun) error
}

var userCommands = map[string]userCommand{
	"add":     {args: "NAME", home: true, password: true, run: (*userRun).add},
	"list":    {run: (*userRun).list},
	"passwd":  {args: "NAME", password: true, run: (*userRun).passwd},
	"del":     {args: "NAME", run: (*userRun).del},
	"disable": {args: "NAME", run: func(c *userRun) error { return c.setDisabled(true) }},
	"enable":  {args: "NAME", run: func(c *userRun) error { return c.setDisabled(false) }},
	"set":     {args: "NAME", flags: setFlags, run: (*userRun).set},
	"show":    {args: "NAME", flags: configFlag, run: (*userRun).show},

	"quota-scan": {args: "NAME", flags: configFlag, run: (*userRun).quotaScan},
}

// userRun is one `ferry user` invocation after its arguments are parsed.
type userRun struct {
	ctx            context.Context
	store          *sqlstore.Store
	quotas         *sqlquota.Store // the quota usage every server counts
	data           string
	database       string // the database url (cliDatabaseURL)
	name           string // NAME, for the commands that take one
	home           string // --home
	storage        string // --storage: local or s3, what --home means
	config         string // --config: the server's file, for its [storage]
	passwordStdin  bool   // --password-stdin
	settings       *userSettings
	flagSet        *flag.FlagSet // to tell which flags were given
	stdin          io.Reader
	stdout, stderr io.Writer
}

// runUser runs `ferry user SUBCOMMAND ...` (args start after "user") and
// returns the exit status: 0 on success, 1 on failure, 2 on a usage error.
// Flags may come before or after NAME.
func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, userUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, userUsage)
		return 0
	}
	cmd, ok := userCommands[sub]
	if !ok {
		fmt.Fprintf(stderr, "ferry user: unknown command %q\n%s", sub, userUsage)
		return 2
	}

	c := &userRun{ctx: context.Background(), stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ferry user "+sub, flag.ContinueOnError)
	c.flagSet = fs
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", config.Defaults().Data, "data directory; users are kept in `DIR`/users.db unless --database says otherwise")
	fs.StringVar(&c.database, "database", "", databaseFlagHelp)
	if cmd.home {
		fs.StringVar(&c.home, "home", "", "home `DIR` of the user (default DATA/home/NAME); with --storage s3 a key prefix (default home/NAME)")
		fs.StringVar(&c.storage, "storage", "local", "`local` or s3: the server's storage backend, which says what --home is")
	}
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	if cmd.password {
		fs.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password as one line from standard input, even on a terminal")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ferry user %s\n", strings.Join(strings.Fields(sub+" "+cmd.args+" [flags]"), " "))
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package has printed the error and the usage
	}
	want := len(strings.Fields(cmd.args))
	if len(pos) != want {
		if len(pos) < want {
			fmt.Fprintf(stderr, "ferry user %s: missing %s\n", sub, cmd.args)
		} else {
			fmt.Fprintf(stderr, "ferry user %s: unexpected argument %q\n", sub, pos[want])
		}
		fs.Usage()
		return 2
	}
	if want == 1 {
		c.name = pos[0]
	}

	c.database = cliDatabaseURL(c.database)
	d, err := openDatabase(c.ctx, c.data, c.database, db.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "ferry user %s: %s\n", sub, errText(err))
		return 1
	}
	c.store = sqlstore.Owning(d, sqlstore.Options{})
	defer c.store.Close()
	c.quotas = sqlquota.New(d, nil, sqlquota.Options{})
	if err := cmd.run(c); err != nil {
		fmt.Fprintf(stderr, "ferry user %s: %s\n", sub, errText(err))
		return 1
	}
	return 0
}

// parseInterleaved parses fs's flags wherever they stand among args and
// returns the other arguments in order. Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (c *userRun) add() error {
	if err := users.ValidateName(c.name); err != nil {
		return err
	}
	// Fail before asking for a password when the name is taken.
	if _, err := c.store.Get(c.ctx, c.name); err == nil {
		return fmt.Errorf("%w: %s", users.ErrExists, c.name)
	} else if !errors.Is(err, users.ErrNotFound) {
		return err
	}
	switch c.storage {
	case "local":
	case "s3":
		return c.addS3()
	default:
		return fmt.Errorf("--storage %q is not local or s3", escape.Display(c.storage))
	}
	home := c.home
	if home == "" {
		home = filepath.Join(c.data, "home", c.name)
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return err
	}
	if err := c.checkHome(home); err != nil {
		return err
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(home)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("creating home: %w", err)
	}
	if err := c.store.Add(c.ctx, users.User{Name: c.name, Home: home}, password); err != nil {
		if errors.Is(statErr, os.ErrNotExist) {
			os.Remove(home) // ours and still empty
		}
		return err
	}
	fmt.Fprintf(c.stdout, "added user %s (home %s)\n", escape.Display(c.name), escape.Display(home))
	return nil
}

// addS3 adds a user whose home is a key prefix of the server's bucket:
// nothing is made now, the server makes the prefix at the first login.
func (c *userRun) addS3() error {
	home := c.home
	if home == "" {
		home = "home/" + c.name
	}
	home, err := s3HomeOf(home)
	if err != nil {
		return err
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	if err := c.store.Add(c.ctx, users.User{Name: c.name, Home: home}, password); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "added user %s (home prefix %s in the bucket, made at the first login)\n", escape.Display(c.name), escape.Display(home))
	return nil
}

func (c *userRun) list() error {
	list, err := c.store.List(c.ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHOME\tDISABLED")
	for _, u := range list {
		disabled := "no"
		if u.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", escape.Display(u.Name), escape.Display(u.Home), disabled)
	}
	return tw.Flush()
}

func (c *userRun) passwd() error {
	// Fail before asking for a password when there is no such user.
	if _, err := c.store.Get(c.ctx, c.name); err != nil {
		return err
	}
	password, err := c.readPassword()
	if err != nil {
		return err
	}
	if err := c.store.SetPassword(c.ctx, c.name, password); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "changed the password of %s\n", c.name)
	return nil
}

func (c *userRun) del() error {
	u, err := c.store.Get(c.ctx, c.name)
	if err != nil {
		return err
	}
	if err := c.store.Delete(c.ctx, c.name); err != nil {
		return err
	}
	if err := c.quotas.Forget(c.ctx, c.name); err != nil {
		return fmt.Errorf("deleted, but its quota usage was kept: %w", err)
	}
	fmt.Fprintf(c.stdout, "deleted user %s (home %s kept)\n", escape.Display(c.name), escape.Display(u.Home))
	return nil
}

func (c *userRun) setDisabled(disabled bool) error {
	u, err := c.store.Get(c.ctx, c.name)
	if err != nil {
		return err
	}
	verb := "enabled"
	if disabled {
		verb = "disabled"
	}
	if u.Disabled != disabled {
		u.Disabled = disabled
		if err := c.store.Update(c.ctx, *u); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.stdout, "%s user %s\n", verb, c.name)
	return nil
}

// readPassword asks for the password twice without echo when standard input
// is a terminal and --password-stdin is not given; otherwise it reads one
// line, without its line ending. An empty password is refused.
func (c *userRun) readPassword() (string, error) {
	var password string
	if f, ok := c.stdin.(*os.File); ok && !c.passwordStdin && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(c.stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			return string(b), err
		}
		var err error
		if password, err = ask("Password: "); err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		again, err := ask("Repeat password: ")
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		if again != password {
			return "", errors.New("the passwords differ")
		}
	} else {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			if errors.Is(err, io.EOF) {
				return "", errors.New("no password on standard input")
			}
			return "", fmt.Errorf("reading password: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	}
	if password == "" {
		return "", errors.New("empty password refused")
	}
	if err := users.ValidatePassword(password); err != nil {
		return "", err
	}
	return password, nil
}
