package job_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"imcast/chatapi"
	"imcast/emulator"
	"imcast/job"
	"imcast/planner"
)

func TestUploadsFillTheBody(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 64, 32))); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"pic.png": buf.Bytes(), "clip.mp4": []byte("not really a video"), "thumb.png": buf.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rows := `{"to":["a","b"],"type":"img","file":"pic.png"}
{"to":"c","type":"video","file":"clip.mp4","thumb":"thumb.png","restrict_access":true,"body":{"length":3}}
{"kind":"groups","to":"g","type":"img","file":"pic.png","body":{"filename":"keep.png"}}
`
	f := newFixtureIn(t, dir, rows, emulator.Config{}, "t")
	rec := &recorder{Sender: f.client}
	prep := job.Uploads(f.client, f.store.Campaign("c"))
	res, err := f.run(t, job.CampaignConfig{Config: job.Config{Prepare: prep}}, rec)
	if err != nil || !res.Complete() {
		t.Fatalf("run: %v", err)
	}
	ups := f.srv.Uploads()
	// pic once unrestricted; clip and thumb restricted
	if len(ups) != 3 {
		t.Fatalf("%d uploads, want 3: %+v", len(ups), ups)
	}
	byName := map[string]emulator.Upload{}
	for _, u := range ups {
		byName[u.Filename] = u
	}
	url := func(name string) string { return f.client.BaseURL() + "/chatfiles/" + byName[name].UUID }
	for _, b := range rec.batches {
		var body map[string]any
		if err := json.Unmarshal(b.Message.Body, &body); err != nil {
			t.Fatal(err)
		}
		switch {
		case b.Kind == chatapi.Groups:
			if body["filename"] != "keep.png" || body["url"] != url("pic.png") {
				t.Errorf("group img body %v: want the row's filename kept and the upload's url", body)
			}
		case b.Message.Type == "img":
			size, _ := body["size"].(map[string]any)
			if body["url"] != url("pic.png") || body["secret"] != byName["pic.png"].Secret || body["filename"] != "pic.png" ||
				size["width"] != 64.0 || size["height"] != 32.0 {
				t.Errorf("img body %v", body)
			}
		case b.Message.Type == "video":
			if body["url"] != url("clip.mp4") || body["thumb"] != url("thumb.png") || body["thumb_secret"] != byName["thumb.png"].Secret ||
				body["file_length"] != 18.0 || body["length"] != 3.0 {
				t.Errorf("video body %v", body)
			}
			if !byName["clip.mp4"].Restricted || !byName["thumb.png"].Restricted {
				t.Errorf("video uploads not restricted: %+v", ups)
			}
		}
	}
	// another campaign of the same ledger sends the same messages: its
	// preparer starts afresh and finds the uploads in the ledger
	res, err = f.runAs(t, "other", job.CampaignConfig{Config: job.Config{Prepare: job.Uploads(f.client, f.store)}}, rec)
	if err != nil || !res.Complete() {
		t.Fatal(err)
	}
	if n := len(f.srv.Uploads()); n != 3 {
		t.Errorf("%d uploads after a second run, want still 3", n)
	}
}

// TestSwappedAttachmentIsNotSent replaces a planned image just before the
// run uploads it: nothing is uploaded and no message is sent.
func TestSwappedAttachmentIsNotSent(t *testing.T) {
	dir := t.TempDir()
	pic := filepath.Join(dir, "pic.png")
	if err := os.WriteFile(pic, []byte("the planned picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixtureIn(t, dir, `{"to":["a","b"],"type":"img","file":"pic.png"}`+"\n", emulator.Config{}, "t")
	uploads := job.Uploads(f.client, f.store)
	swapThenUpload := func(ctx context.Context, m *planner.Message) (chatapi.Message, error) {
		// planned, validated and batched; now someone swaps the file
		if err := os.WriteFile(pic, []byte("another picture"), 0o600); err != nil {
			t.Error(err)
		}
		return uploads(ctx, m)
	}
	_, err := f.run(t, job.CampaignConfig{Config: job.Config{Prepare: swapThenUpload}}, nil)
	if !errors.Is(err, planner.ErrAttachmentChanged) {
		t.Fatalf("run: got %v, want ErrAttachmentChanged", err)
	}
	if st := f.srv.Stats(); st.Requests != 0 {
		t.Errorf("%d requests after the file was swapped, want 0", st.Requests)
	}
}

// TestUploadStopsOnARefusedToken checks that an upload answered 401 stops
// the run at once, as a refused send does, instead of being tried again.
func TestUploadStopsOnARefusedToken(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pic.png"), []byte("a picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixtureIn(t, dir, `{"to":"a","type":"img","file":"pic.png"}`+"\n", emulator.Config{Token: "good"}, "bad")
	_, err := f.run(t, job.CampaignConfig{}, nil)
	if !errors.Is(err, chatapi.ErrCredentials) {
		t.Fatalf("run: got %v, want ErrCredentials", err)
	}
	if st := f.srv.Stats(); st.Requests != 1 || st.Responses[401] != 1 {
		t.Errorf("%d requests, %d answered 401; want the one upload refused", st.Requests, st.Responses[401])
	}
}
