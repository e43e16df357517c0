package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/warden-gateway/warden/internal/identity"
)

// Bounds on CEL. An expression is evaluated once per session per policy,
// never per statement, but a token's claims are attacker-influenced input:
// the cost limit stops an expression like claims.groups.all(...) over a
// huge claim from pinning a CPU.
const (
	celCostLimit      = 100_000
	celMaxSourceRunes = 8 << 10
)

// newCELEnv declares the variables a `when` or `admins` expression sees.
func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("sub", cel.StringType),
		cel.Variable("iss", cel.StringType),
		cel.Variable("groups", cel.ListType(cel.StringType)),
		// claims.?team.orValue("") lets an expression handle an absent
		// claim without an evaluation error.
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(celMaxSourceRunes),
	)
}

// condition is a compiled CEL expression; nil means "always true".
type condition struct {
	src string
	prg cel.Program
}

// compileCondition compiles src. The expression must be boolean; dyn is
// accepted too (claims.is_admin has type dyn) and checked at evaluation.
func compileCondition(env *cel.Env, src string) (*condition, error) {
	if src == "" {
		return nil, nil
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		// CEL's own rendering spans several lines (source, caret); a
		// config error is one line per problem, so keep position+message.
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("must be a boolean expression, not %s", out)
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, err
	}
	return &condition{src: src, prg: prg}, nil
}

// activation is the input of every condition for one principal.
type activation struct {
	vars map[string]any
}

func newActivation(p *identity.Principal) activation {
	claims := p.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	groups := p.Groups
	if groups == nil {
		groups = []string{}
	}
	return activation{vars: map[string]any{
		"claims": claims,
		"sub":    p.Subject,
		"iss":    p.Issuer,
		"groups": groups,
	}}
}

var errNotBool = errors.New("did not evaluate to a boolean")

// eval reports whether the condition holds. Any error (a missing claim, a
// type mismatch, the cost limit) is returned with false: the caller treats
// the condition as not holding, so errors fail closed.
func (c *condition) eval(a activation) (bool, error) {
	if c == nil {
		return true, nil
	}
	out, _, err := c.prg.Eval(a.vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%w (got %s)", errNotBool, out.Type())
	}
	return bool(b), nil
}
