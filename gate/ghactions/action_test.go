package ghactions

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: Q0EtREFUQQ==
users:
- name: ci
  user:
    token: "eyJhbGciOiJSUzI1NiJ9.s3cr3t-t0ken"
    client-key-data: S0VZLURBVEEtU0VDUkVU
contexts:
- name: prod
  context: {cluster: prod, user: ci}
current-context: prod
`

func TestRunAction(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        env
		want       ActionConfig // Kubeconfig and Cleanup not compared
		kubeconfig bool
		masks      []string
		wantErr    []string
	}{
		{
			name: "minimal",
			env:  env{"INPUT_POLICY": "builtin:http-golden-signals"},
			want: ActionConfig{Policy: "builtin:http-golden-signals", ReportDir: DefaultReportDir},
		},
		{
			name: "everything",
			env: env{
				"INPUT_POLICY": " .github/gate.yaml ", "INPUT_KUBECONFIG": kubeconfig, "INPUT_CONTEXT": "prod",
				"INPUT_NAMESPACE": "shop", "INPUT_WINDOW": "2m", "INPUT_ON-INCONCLUSIVE": "Fail",
				"INPUT_REPORT-DIR": "out", "INPUT_ARGS": `-l 'app=web,tier in (a, b)' --warmup=5s`,
			},
			want: ActionConfig{Policy: ".github/gate.yaml", Context: "prod", Namespace: "shop", Window: 2 * time.Minute,
				OnInconclusive: "fail", ReportDir: "out", Args: []string{"-l", "app=web,tier in (a, b)", "--warmup=5s"}},
			kubeconfig: true,
			masks:      []string{"eyJhbGciOiJSUzI1NiJ9.s3cr3t-t0ken", "S0VZLURBVEEtU0VDUkVU"},
		},
		{
			name:       "base64 kubeconfig, underscore input names",
			env:        env{"INPUT_POLICY": "p.yaml", "INPUT_KUBECONFIG": base64.StdEncoding.EncodeToString([]byte(kubeconfig)), "INPUT_ON_INCONCLUSIVE": "pass"},
			want:       ActionConfig{Policy: "p.yaml", OnInconclusive: "pass", ReportDir: DefaultReportDir},
			kubeconfig: true,
			masks:      []string{"eyJhbGciOiJSUzI1NiJ9.s3cr3t-t0ken", "S0VZLURBVEEtU0VDUkVU"},
		},
		{
			name:       "JSON kubeconfig on one line",
			env:        env{"INPUT_POLICY": "p.yaml", "INPUT_KUBECONFIG": `{"apiVersion":"v1","clusters":[],"users":[{"name":"u","user":{"token":"json-s3cr3t-token","password":"hunter2-long"}}]}`},
			want:       ActionConfig{Policy: "p.yaml", ReportDir: DefaultReportDir},
			kubeconfig: true,
			masks:      []string{"json-s3cr3t-token", "hunter2-long"},
		},
		{
			name: "every problem at once",
			env: env{"INPUT_WINDOW": "soon", "INPUT_ON-INCONCLUSIVE": "maybe", "INPUT_ARGS": `--to "deploy/x`,
				"INPUT_KUBECONFIG": kubeconfig},
			wantErr: []string{"input policy is required", `input window "soon"`, `input on-inconclusive "maybe"`,
				"input args: unterminated \" quote starting at character 6"},
		},
		{
			name:    "negative window",
			env:     env{"INPUT_POLICY": "p.yaml", "INPUT_WINDOW": "-1s"},
			wantErr: []string{`input window "-1s": must be positive`},
		},
		{
			name:    "a path instead of the content",
			env:     env{"INPUT_POLICY": "p.yaml", "INPUT_KUBECONFIG": "/home/runner/.kube/config"},
			wantErr: []string{"input kubeconfig: not a kubeconfig", "not a path"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout bytes.Buffer
			cfg, err := RunAction(context.Background(), tc.env.get, &stdout, dir)
			if cfg == nil || cfg.Cleanup == nil {
				t.Fatal("nil config or Cleanup")
			}
			defer cfg.Cleanup()
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "runner/.kube") || strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error echoes the kubeconfig input: %v", err)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("kubeconfig written despite invalid inputs: %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *cfg
			got.Kubeconfig, got.Cleanup = "", nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config\n got %+v\nwant %+v", got, tc.want)
			}
			var wantStdout string
			for _, m := range tc.masks {
				wantStdout += "::add-mask::" + m + "\n"
			}
			if stdout.String() != wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), wantStdout)
			}
			if !tc.kubeconfig {
				if cfg.Kubeconfig != "" {
					t.Errorf("kubeconfig file %s without the input", cfg.Kubeconfig)
				}
				return
			}
			if filepath.Dir(cfg.Kubeconfig) != dir {
				t.Errorf("kubeconfig %s not in the temp dir %s", cfg.Kubeconfig, dir)
			}
			fi, err := os.Stat(cfg.Kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
			}
			want := tc.env["INPUT_KUBECONFIG"]
			if !strings.Contains(want, "clusters") {
				want = kubeconfig // the base64 case: written decoded
			}
			if b, _ := os.ReadFile(cfg.Kubeconfig); string(b) != want {
				t.Errorf("kubeconfig content differs:\n%s", b)
			}
			if err := cfg.Cleanup(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(cfg.Kubeconfig); !os.IsNotExist(err) {
				t.Errorf("kubeconfig still there after Cleanup: %v", err)
			}
			if err := cfg.Cleanup(); err != nil {
				t.Errorf("second Cleanup: %v", err)
			}
		})
	}
}

func TestRunActionTempDirFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cfg, err := RunAction(context.Background(), env{"INPUT_POLICY": "p", "INPUT_KUBECONFIG": kubeconfig}.get, &bytes.Buffer{}, missing)
	if err == nil || !strings.Contains(err.Error(), "create temporary file") {
		t.Errorf("error = %v", err)
	}
	if cfg.Kubeconfig != "" {
		t.Errorf("kubeconfig path %q after a failure", cfg.Kubeconfig)
	}
}

func TestRunActionCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := RunAction(ctx, env{"INPUT_POLICY": "p", "INPUT_KUBECONFIG": kubeconfig}.get, &bytes.Buffer{}, dir); err == nil {
		t.Error("cancelled context accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("kubeconfig written after cancel: %v", entries)
	}
}

func TestRunArgs(t *testing.T) {
	cfg := &ActionConfig{Policy: "p.yaml", Kubeconfig: "/tmp/k", Context: "c", Namespace: "n", Window: 90 * time.Second,
		OnInconclusive: "fail", ReportDir: "out", Args: []string{"-l", "a=b"}}
	want := []string{"run", "--policy", "p.yaml", "--kubeconfig", "/tmp/k", "--context", "c", "--namespace", "n",
		"--window", "1m30s", "--on-inconclusive", "fail",
		"--report", "json=out/tapgate-report.json", "--report", "junit=out/tapgate-junit.xml", "--report", "markdown=out/tapgate-report.md",
		"-l", "a=b"}
	if got := cfg.RunArgs(); !reflect.DeepEqual(got, want) {
		t.Errorf("RunArgs\n got %q\nwant %q", got, want)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"   \t\n ", nil, ""},
		{"--a b", []string{"--a", "b"}, ""},
		{`-l 'x=y, z' --to "deploy/a b"`, []string{"-l", "x=y, z", "--to", "deploy/a b"}, ""},
		{`a\ b c\\d`, []string{"a b", `c\d`}, ""},
		{`"q\"uote" "\$HOME" "\n"`, []string{`q"uote`, "$HOME", `\n`}, ""},
		{`'it''s' ''`, []string{"its", ""}, ""},
		{`$HOME *.go`, []string{"$HOME", "*.go"}, ""},
		{"a \\\nb", []string{"a", "b"}, ""},
		{"--flag=\"é ü\"", []string{"--flag=é ü"}, ""},
		{`'open`, nil, "unterminated ' quote starting at character 1"},
		{`a "b`, nil, `unterminated " quote starting at character 3`},
	} {
		got, err := SplitArgs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SplitArgs(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
