package settings

import (
	"context"
	"errors"
	"fmt"
	"github.com/valkeyops/secure/internal/conn"
	"regexp"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// ServerInfo is what the module reports about the server it talked to.
type ServerInfo struct {
	Name    string `json:"name"`    // "valkey" or "redis"
	Version string `json:"version"` // e.g. "8.0.1"
}

// server is a connected server and what was read from it at the start.
type server struct {
	client     valkey.Client
	info       ServerInfo
	configFile string            // INFO server config_file ("" when none)
	values     map[string]string // CONFIG GET * (lowercase names)
}

// readServer reads INFO server and CONFIG GET * in one round trip.
func readServer(ctx context.Context, c valkey.Client) (*server, error) {
	resps := c.DoMulti(ctx,
		c.B().Info().Section("server").Build(),
		c.B().ConfigGet().Parameter("*").Build(),
	)
	infoText, err := resps[0].ToString()
	if err != nil {
		return nil, fmt.Errorf("failed to read INFO server: %w", err)
	}
	values, err := resps[1].AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("failed to read the server's configuration (CONFIG GET *): %w", err)
	}
	s := &server{client: c, values: make(map[string]string, len(values))}
	for k, v := range values {
		s.values[strings.ToLower(k)] = v
	}
	info := conn.ParseInfo(infoText)
	s.configFile = info["config_file"]
	switch {
	case info["valkey_version"] != "":
		s.info = ServerInfo{Name: "valkey", Version: info["valkey_version"]}
	case info["server_name"] != "":
		s.info = ServerInfo{Name: info["server_name"], Version: info["redis_version"]}
	default:
		s.info = ServerInfo{Name: "redis", Version: info["redis_version"]}
	}
	return s, nil
}

func (s *server) names() map[string]bool {
	m := make(map[string]bool, len(s.values))
	for k := range s.values {
		m[k] = true
	}
	return m
}

// configGet re-reads the named parameters.
func (s *server) configGet(ctx context.Context, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	m, err := s.client.Do(ctx, s.client.B().ConfigGet().Parameter(names...).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("failed to re-read the configuration: %w", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// pair is one parameter of a CONFIG SET.
type pair struct{ name, value string }

// configSet applies every pair in one CONFIG SET: the server applies all of
// them or none.
func (s *server) configSet(ctx context.Context, pairs []pair) error {
	if len(pairs) == 0 {
		return nil
	}
	cmd := s.client.B().ConfigSet().ParameterValue()
	for _, p := range pairs {
		cmd = cmd.ParameterValue(p.name, p.value)
	}
	return s.client.Do(ctx, cmd.Build()).Error()
}

// refusal is a CONFIG SET error that names one parameter the server will
// not change at runtime.
type refusal struct {
	param  string
	reason string // "immutable" or "protected"
}

var refusedRe = regexp.MustCompile(`argument '([^']+)'\) - can't set (immutable|protected) config`)

// asRefusal recognises the server refusing a parameter because it is
// immutable or protected (the change then needs the file and a restart).
func asRefusal(err error) (refusal, bool) {
	var verr *valkey.ValkeyError
	if !errors.As(err, &verr) {
		return refusal{}, false
	}
	m := refusedRe.FindStringSubmatch(verr.Error())
	if m == nil {
		return refusal{}, false
	}
	return refusal{param: strings.ToLower(m[1]), reason: m[2]}, true
}
