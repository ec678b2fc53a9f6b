package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"imcast/chatapi"
	"imcast/emulator"
)

// connOptions say where the API is and how to authenticate. The
// credentials come from the environment or a file, never from a flag.
type connOptions struct {
	Host, Org, App, AppID string
	TokenFile             string
	Fake                  bool // an emulator in-process, not the service
}

// connectionFlags are the flags of connOptions.
func connectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "host", EnvVars: []string{"EASEMOB_HOST"}, Usage: "API base `URL`, e.g. https://a1.easemob.com (http:// only to loopback)"},
		&cli.StringFlag{Name: "org", EnvVars: []string{"EASEMOB_ORG"}, Usage: "org `NAME` of the /{org}/{app} URL flavour"},
		&cli.StringFlag{Name: "app", EnvVars: []string{"EASEMOB_APP"}, Usage: "app `NAME` of the /{org}/{app} URL flavour"},
		&cli.StringFlag{Name: "app-id", EnvVars: []string{"EASEMOB_APP_ID"}, Usage: "`ID` of the /app-id/{app_id} URL flavour"},
		&cli.StringFlag{Name: "token-file", EnvVars: []string{"EASEMOB_TOKEN_FILE"}, Usage: "read the app token from `FILE` (else EASEMOB_TOKEN, else EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET)"},
		&cli.BoolFlag{Name: "fake", Usage: "use an emulator started in-process on 127.0.0.1, not the service"},
	}
}

func connOptionsFrom(c *cli.Context) connOptions {
	return connOptions{Host: c.String("host"), Org: c.String("org"), App: c.String("app"), AppID: c.String("app-id"),
		TokenFile: c.String("token-file"), Fake: c.Bool("fake")}
}

// client builds the API client, or starts the in-process emulator (at the
// quota scale given) for Fake. The func returned closes them.
func (o connOptions) client(fakeScale float64) (*chatapi.Client, func(), error) {
	cfg := chatapi.Config{Host: o.Host, Org: o.Org, App: o.App, AppID: o.AppID}
	closer := func() {}
	if o.Fake {
		srv, err := emulator.Listen("127.0.0.1:0", emulator.Config{QuotaScale: fakeScale})
		if err != nil {
			return nil, nil, err
		}
		cfg = chatapi.Config{Host: srv.URL, Org: "fake", App: "imcast", Tokens: chatapi.StaticToken("fake")}
		closer = func() { srv.Close() }
	} else if err := credentials(o.TokenFile, &cfg); err != nil {
		return nil, nil, err
	}
	client, err := chatapi.New(cfg)
	if err != nil {
		closer()
		return nil, nil, err
	}
	return client, func() {
		// Idle keep-alive connections would hold up the emulator's
		// shutdown.
		client.CloseIdleConnections()
		closer()
	}, nil
}

// credentials sets how cfg gets the app token: from --token-file, else
// EASEMOB_TOKEN, else by fetching it with EASEMOB_CLIENT_ID and
// EASEMOB_CLIENT_SECRET. A secret is never a flag's value, which other
// users of the machine can read.
func credentials(tokenFile string, cfg *chatapi.Config) error {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return fmt.Errorf("token file %s is empty", tokenFile)
		}
		if !tokenText(t) {
			return fmt.Errorf("token file %s holds more than one token: spaces, new lines or control characters", tokenFile)
		}
		cfg.Tokens = chatapi.StaticToken(t)
		return nil
	}
	if t := strings.TrimSpace(os.Getenv("EASEMOB_TOKEN")); t != "" {
		if !tokenText(t) {
			return errors.New("EASEMOB_TOKEN holds spaces, new lines or control characters: not a token")
		}
		cfg.Tokens = chatapi.StaticToken(t)
		return nil
	}
	id, secret := os.Getenv("EASEMOB_CLIENT_ID"), os.Getenv("EASEMOB_CLIENT_SECRET")
	switch {
	case id != "" && secret != "":
		cfg.ClientID, cfg.ClientSecret = id, secret
		return nil
	case id != "" || secret != "":
		return errors.New("client credentials need both EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET")
	}
	return errors.New("no credentials: set EASEMOB_TOKEN, or EASEMOB_CLIENT_ID and EASEMOB_CLIENT_SECRET, or give --token-file (or use --fake)")
}

// tokenText reports whether t can be a bearer token: printable ASCII
// without spaces, as an Authorization header carries it.
func tokenText(t string) bool {
	for _, r := range t {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	return true
}

// redact blots the secrets of the environment out of a message, should one
// have slipped into an error.
func redact(msg string) string {
	return chatapi.Scrub(msg, strings.TrimSpace(os.Getenv("EASEMOB_TOKEN")), strings.TrimSpace(os.Getenv("EASEMOB_CLIENT_SECRET")))
}
