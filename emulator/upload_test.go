package emulator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// uuidV4 is the form of an upload's UUID.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// formField is one field of a multipart body; a file if filename is set.
type formField struct {
	name, filename string
	content        []byte
}

// multipartBody encodes fields as multipart/form-data and returns the body
// and its Content-Type.
func multipartBody(t *testing.T, fields ...formField) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f.filename != "" {
			w, err = mw.CreateFormFile(f.name, f.filename)
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err == nil {
			_, err = w.Write(f.content)
		}
		if err != nil {
			t.Fatalf("build multipart body: %v", err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatalf("build multipart body: %v", err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// raw sends a request with the given headers (and the token, unless "") and
// returns the status, the headers and the body of the answer.
func (h *harness) raw(method, path, token string, header map[string]string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.run.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

// upload posts a multipart body to path with the token and extra headers.
func (h *harness) upload(path, token string, header map[string]string, fields ...formField) answer {
	h.t.Helper()
	body, ctype := multipartBody(h.t, fields...)
	hd := map[string]string{"Content-Type": ctype, "Accept": "application/json"}
	for k, v := range header {
		hd[k] = v
	}
	status, _, raw := h.raw(http.MethodPost, path, token, hd, body)
	a := answer{status: status}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		h.t.Fatalf("POST %s: answer %d is not a JSON object: %v: %q", path, status, err, raw)
	}
	return a
}

// entity returns entities[0] of an upload answer.
func (a answer) entity() map[string]any {
	es, _ := a.body["entities"].([]any)
	if len(es) != 1 {
		return nil
	}
	e, _ := es[0].(map[string]any)
	return e
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestUpload(t *testing.T) {
	clock := newClock()
	clock.Set(2500 * time.Millisecond)
	h := start(t, Config{Now: clock.Now})
	ms := float64(epoch.Add(2500 * time.Millisecond).UnixMilli())

	image := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0}, 1000)
	cases := []struct {
		name       string
		base       string
		header     map[string]string
		fields     []formField
		filename   string // as recorded
		content    []byte
		restricted bool
	}{
		{"a file", easemob, nil,
			[]formField{{"file", "hello.txt", []byte("hello")}}, "hello.txt", []byte("hello"), false},
		{"restricted, with thumbnail headers", agora,
			map[string]string{"restrict-access": "true", "thumbnail-height": "100", "thumbnail-width": "80"},
			[]formField{{"file", "photo.png", image}}, "photo.png", image, true},
		{"restrict-access in capitals", easemob, map[string]string{"restrict-access": "TRUE"},
			[]formField{{"file", "other.png", []byte("other")}}, "other.png", []byte("other"), true},
		{"restrict-access false", easemob, map[string]string{"restrict-access": "false"},
			[]formField{{"file", "b.bin", []byte("b")}}, "b.bin", []byte("b"), false},
		{"other fields around the file", easemob, nil,
			[]formField{{"note", "", []byte("skip me")}, {"file", "a.bin", []byte("a")}, {"after", "", []byte("x")}}, "a.bin", []byte("a"), false},
		{"the path of a file name is dropped", easemob, nil,
			[]formField{{"file", "dir/sub/c.txt", []byte("c")}}, "c.txt", []byte("c"), false},
		{"an empty file", easemob, nil,
			[]formField{{"file", "empty", nil}}, "empty", nil, false},
		{"the same content again", agora, nil,
			[]formField{{"file", "again.txt", []byte("hello")}}, "again.txt", []byte("hello"), false},
	}
	var want []Upload
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.upload(c.base+"/chatfiles", testToken, c.header, c.fields...)
			if a.status != http.StatusOK {
				t.Fatalf("got status %d (%v), want 200", a.status, a.body)
			}
			wantStr := map[string]string{
				"action": "post", "application": applicationUUID, "path": "/chatfiles",
				"uri": h.run.URL + c.base + "/chatfiles", "organization": "", "applicationName": "",
			}
			if c.base == easemob {
				wantStr["organization"], wantStr["applicationName"] = "org1", "app1"
			}
			for k, v := range wantStr {
				if got := a.str(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if a.body["timestamp"] != ms || a.body["duration"] != float64(0) {
				t.Errorf("got timestamp %v and duration %v, want %v and 0", a.body["timestamp"], a.body["duration"], ms)
			}
			e := a.entity()
			uuid, _ := e["uuid"].(string)
			secret, _ := e["share-secret"].(string)
			if len(e) != 3 || !uuidV4.MatchString(uuid) || e["type"] != "chatfile" || len(secret) < 32 {
				t.Errorf("got entities %v, want one with a v4 uuid, type chatfile and a share-secret", a.body["entities"])
			}
			want = append(want, Upload{UUID: uuid, Secret: secret, SHA256: hexSum(c.content),
				Size: int64(len(c.content)), Filename: c.filename, Restricted: c.restricted})
		})
	}
	t.Run("recorded", func(t *testing.T) {
		got := h.run.Uploads()
		if len(got) != len(want) {
			t.Fatalf("got %d uploads, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("upload %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		st := h.run.Stats()
		if st.Uploads != len(cases) || st.DuplicateUploads != 1 {
			t.Errorf("got %d uploads, %d duplicates, want %d, 1", st.Uploads, st.DuplicateUploads, len(cases))
		}
		for content, n := range map[string]int{"hello": 2, "other": 1, "never": 0} {
			if got := h.run.UploadsOf(hexSum([]byte(content))); got != n {
				t.Errorf("UploadsOf(%q): got %d, want %d", content, got, n)
			}
		}
		if st.Calls != 0 || st.TokenRequests != 0 {
			t.Errorf("got %d message calls and %d token requests, want 0 and 0", st.Calls, st.TokenRequests)
		}
	})
}

func TestUploadErrors(t *testing.T) {
	clock := newClock()
	h := start(t, Config{Now: clock.Now, QuotaScale: 0.001}) // 1 upload a second
	path := easemob + "/chatfiles"
	small := formField{"file", "f.txt", []byte("content")}
	big := make([]byte, MaxUploadSize+1)
	cases := []struct {
		name   string
		token  string
		fields []formField
		body   string // sent as JSON instead of fields if set
		status int
		err    string
		desc   string
	}{
		{"no token", "", []formField{small}, "", 401, "unauthorized", descNoToken},
		{"not multipart", testToken, nil, `{"file":"x"}`, 400, "invalid_request_body", descInvalidBody},
		{"no file field", testToken, []formField{{"other", "f.txt", []byte("x")}}, "", 400, "illegal_argument", descNoFile},
		{"no field at all", testToken, nil, "", 400, "illegal_argument", descNoFile},
		{"a byte over 10 MB", testToken, []formField{{"file", "big.bin", big}}, "", 413, "file_too_large", descTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a answer
			if c.body != "" {
				a = h.do(http.MethodPost, path, c.token, c.body)
			} else {
				a = h.upload(path, c.token, nil, c.fields...)
			}
			if a.status != c.status || a.str("error") != c.err || a.str("error_description") != c.desc {
				t.Errorf("got %d %q %q, want %d %q %q", a.status, a.str("error"), a.str("error_description"), c.status, c.err, c.desc)
			}
		})
	}
	t.Run("wrong token", func(t *testing.T) {
		strict := start(t, Config{Token: "secret"})
		a := strict.upload(path, "nope", nil, small)
		if a.status != 401 || a.str("error_description") != descBadToken {
			t.Errorf("got %d %q, want 401 %q", a.status, a.str("error_description"), descBadToken)
		}
	})
	t.Run("GET the upload path", func(t *testing.T) {
		if a := h.do(http.MethodGet, path, testToken, nil); a.status != 405 {
			t.Errorf("got status %d, want 405", a.status)
		}
	})
	t.Run("nothing recorded, no quota used", func(t *testing.T) {
		if got := h.run.Uploads(); len(got) != 0 {
			t.Errorf("got uploads %+v, want none", got)
		}
		a := h.upload(path, testToken, nil, formField{"file", "max.bin", big[:MaxUploadSize]})
		if a.status != 200 {
			t.Fatalf("exactly 10 MB: got status %d (%v), want 200", a.status, a.body)
		}
		if got := h.run.Uploads(); len(got) != 1 || got[0].Size != MaxUploadSize || got[0].SHA256 != hexSum(big[:MaxUploadSize]) {
			t.Errorf("got uploads %+v, want one of %d bytes", got, MaxUploadSize)
		}
	})
}

func TestUploadQuota(t *testing.T) {
	if got := New(Config{}).Limits()[KindUpload]; len(got.Quotas) != 1 || got.Quotas[0] != (Quota{unitCalls, 100, time.Second, 429}) {
		t.Errorf("got limits %+v, want one quota of 100 calls a second answering 429", got)
	}
	clock := newClock()
	h := start(t, Config{Now: clock.Now, QuotaScale: 0.02}) // 2 uploads a second
	good := formField{"file", "f.txt", []byte("content")}
	steps := []struct {
		name   string
		at     time.Duration
		n      int
		f      formField
		status int
	}{
		{"the quota", 0, 2, good, 200},
		{"over it", 0, 2, good, 429},
		{"a refused call still answers 400", 0, 1, formField{"nofile", "", nil}, 400},
		{"the window slid: 429s used no quota", time.Second, 2, good, 200},
		{"400s use no quota", 2 * time.Second, 3, formField{"nofile", "", nil}, 400},
		{"the whole quota after 400s", 2 * time.Second, 2, good, 200},
		{"over it again", 2 * time.Second, 1, good, 429},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Set(s.at)
			for i := range s.n {
				a := h.upload(agora+"/chatfiles", testToken, nil, s.f)
				if a.status != s.status {
					t.Fatalf("call %d of %d: got status %d (%v), want %d", i+1, s.n, a.status, a.body, s.status)
				}
				if s.status == 429 && a.str("error") != "resource_limited" {
					t.Errorf("got %v, want resource_limited", a.body)
				}
			}
		})
	}
	if st := h.run.Stats(); st.Uploads != 6 || st.DuplicateUploads != 5 || st.Responses[429] != 3 {
		t.Errorf("got %d uploads, %d duplicates, %d answers 429, want 6, 5, 3", st.Uploads, st.DuplicateUploads, st.Responses[429])
	}
}

func TestDownload(t *testing.T) {
	h := start(t, Config{})
	public := []byte("public content")
	private := []byte("private content")
	upload := func(content []byte, header map[string]string) (uuid, secret string) {
		a := h.upload(easemob+"/chatfiles", testToken, header, formField{"file", "f", content})
		if a.status != 200 {
			t.Fatalf("upload: got status %d (%v), want 200", a.status, a.body)
		}
		e := a.entity()
		uuid, _ = e["uuid"].(string)
		secret, _ = e["share-secret"].(string)
		return uuid, secret
	}
	pub, pubSecret := upload(public, nil)
	priv, privSecret := upload(private, map[string]string{"restrict-access": "true"})
	cases := []struct {
		name, method, path, token string
		header                    map[string]string
		status                    int
		want                      []byte // the content, for a 200
		desc                      string // error_description, for a 401
	}{
		{"public", http.MethodGet, easemob + "/chatfiles/" + pub, testToken, nil, 200, public, ""},
		{"public under the other flavour", http.MethodGet, agora + "/chatfiles/" + pub, testToken, nil, 200, public, ""},
		{"public with a share-secret", http.MethodGet, easemob + "/chatfiles/" + pub, testToken, map[string]string{"share-secret": pubSecret}, 200, public, ""},
		{"HEAD", http.MethodHead, easemob + "/chatfiles/" + pub, testToken, nil, 200, nil, ""},
		{"restricted with its share-secret", http.MethodGet, easemob + "/chatfiles/" + priv, testToken, map[string]string{"share-secret": privSecret}, 200, private, ""},
		{"restricted without a share-secret", http.MethodGet, easemob + "/chatfiles/" + priv, testToken, nil, 401, nil, descShareSecret},
		{"restricted with another's share-secret", http.MethodGet, easemob + "/chatfiles/" + priv, testToken, map[string]string{"share-secret": pubSecret}, 401, nil, descShareSecret},
		{"no bearer token", http.MethodGet, easemob + "/chatfiles/" + pub, "", nil, 401, nil, descNoToken},
		{"unknown uuid", http.MethodGet, easemob + "/chatfiles/00000000-0000-4000-8000-000000000000", testToken, nil, 404, nil, ""},
		{"a path below the uuid", http.MethodGet, easemob + "/chatfiles/" + pub + "/x", testToken, nil, 404, nil, ""},
		{"POST to a file", http.MethodPost, easemob + "/chatfiles/" + pub, testToken, nil, 405, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, header, body := h.raw(c.method, c.path, c.token, c.header, nil)
			if status != c.status {
				t.Fatalf("got status %d (%s), want %d", status, body, c.status)
			}
			switch {
			case status == 200 && !bytes.Equal(body, c.want):
				t.Errorf("got content %q, want %q", body, c.want)
			case status == 200 && header.Get("Content-Type") != "application/octet-stream":
				t.Errorf("got Content-Type %q, want application/octet-stream", header.Get("Content-Type"))
			case status == 401 && !strings.Contains(string(body), `"error_description":"`+c.desc+`"`):
				t.Errorf("got %s, want error_description %q", body, c.desc)
			}
		})
	}
	if st := h.run.Stats(); st.Uploads != 2 {
		t.Errorf("got %d uploads, want 2: a download is not an upload", st.Uploads)
	}
}
