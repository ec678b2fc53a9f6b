package checkpoint

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Upload is an attachment the service already holds, recorded so that a
// resumed or repeated run does not upload it again. It is kept for every
// campaign of the ledger, under a key the caller derives from the file's
// content and where it was uploaded.
type Upload struct {
	UUID   string    `json:"uuid"`
	URL    string    `json:"url"`
	Secret string    `json:"share_secret"` // the file's share-secret, not a credential
	Time   time.Time `json:"time"`
}

// Uploaded returns the upload recorded under key, if any.
func (s *Store) Uploaded(key [32]byte) (Upload, bool, error) {
	var u Upload
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUploads).Get(key[:])
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &u)
	})
	return u, found, err
}

// RecordUpload durably records an upload under key.
func (s *Store) RecordUpload(key [32]byte, u Upload) error {
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUploads).Put(key[:], v)
	})
}

// Uploaded returns the upload recorded under key, for the campaign's run.
func (c *Campaign) Uploaded(key [32]byte) (Upload, bool, error) { return c.s.Uploaded(key) }

// RecordUpload records an upload, for the campaign's run.
func (c *Campaign) RecordUpload(key [32]byte, u Upload) error { return c.s.RecordUpload(key, u) }
