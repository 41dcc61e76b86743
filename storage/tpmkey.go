package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"inert/storage/luks2"
)

// The tpm key source seals a random 256-bit secret to a PolicyPCR and keeps
// the sealed object in a LUKS2 token laid out as systemd-cryptenroll's
// "systemd-tpm2" token (systemd 252 fields):
//
//	{"type":"systemd-tpm2", "keyslots":["0"],
//	 "tpm2-blob": base64(TPM2B_PRIVATE || TPM2B_PUBLIC),
//	 "tpm2-pcrs": [7,11,12], "tpm2-pcr-bank": "sha256",
//	 "tpm2-primary-alg": "ecc", "tpm2-policy-hash": hex(policy digest),
//	 "tpm2-pin": false}
//
// As with systemd, the keyslot passphrase is the base64 text of the unsealed
// secret, and the parent is the TCG reference ECC P-256 SRK created afresh
// under the owner hierarchy (nothing persistent is left in the TPM).
//
// Which PCR 11 value: inert measures the "inert-storage" phase FIRST (the
// storage step's opening extend), then seals or unseals against the PCRs as
// they are at that moment; the lock step then extends "ready", after which
// the policy can never be satisfied again in this boot, so the service can
// never unseal. Sealing to current values rather than a predicted value
// keeps the seal and the unseal on the same code path: both simply require
// that PCR 7, 11 and 12 are what they were at the first provisioning.
const (
	TPMTokenType = "systemd-tpm2"
	tpmSecretLen = 32
	// maxTPMBlob bounds the base64-decoded blob a token may carry.
	maxTPMBlob = 4096
)

// DefaultTPMPCRs: Secure Boot policy (7), the UKI and boot phases (11) and
// the operator configuration (12). PCR 12 is in because an operator config
// that changes what the service may load must not inherit the data.
var DefaultTPMPCRs = []int{7, 11, 12}

var (
	// ErrPCRMismatch: the PCRs differ from their values at sealing time;
	// the TPM will not unseal (a different UKI, Secure Boot state, config
	// or boot phase).
	ErrPCRMismatch = errors.New("TPM PCRs differ from sealing time")
	// ErrTPMToken: the volume carries no usable systemd-tpm2 token.
	ErrTPMToken = errors.New("systemd-tpm2 token unusable")
	// ErrTPMUnavailable: the TPM could not be opened or failed a command.
	ErrTPMUnavailable = errors.New("TPM unavailable")
)

// TPMOpener opens a connection to the TPM (the resource-managed device in
// production, a swtpm socket in tests).
type TPMOpener func() (transport.TPMCloser, error)

// DeviceTPM opens a Linux TPM character device (/dev/tpmrm0).
func DeviceTPM(path string) TPMOpener {
	return func() (transport.TPMCloser, error) { return linuxtpm.Open(path) }
}

// TPMKey is the "tpm" zone key source.
type TPMKey struct {
	Open TPMOpener
	// PCRs of the sha256 bank the secret is sealed to; DefaultTPMPCRs when
	// empty. A token sealed to any other set is refused.
	PCRs []int
	// Rand supplies the secret; crypto/rand when nil.
	Rand io.Reader
}

// Name implements KeySource.
func (k TPMKey) Name() string { return "tpm" }

func (k TPMKey) pcrs() ([]int, error) {
	p := slices.Clone(k.PCRs)
	if len(p) == 0 {
		p = slices.Clone(DefaultTPMPCRs)
	}
	slices.Sort(p)
	p = slices.Compact(p)
	for _, n := range p {
		if n < 0 || n > 23 {
			return nil, fmt.Errorf("%w: PCR %d out of range", ErrTPMToken, n)
		}
	}
	return p, nil
}

// TPMToken is the systemd-tpm2 token as inert reads and writes it.
type TPMToken struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Blob       string   `json:"tpm2-blob"`
	PCRs       []int    `json:"tpm2-pcrs"`
	PCRBank    string   `json:"tpm2-pcr-bank"`
	PrimaryAlg string   `json:"tpm2-primary-alg"`
	PolicyHash string   `json:"tpm2-policy-hash"`
	PIN        bool     `json:"tpm2-pin"`
}

// sealed is a token's blob split into the TPM's two halves.
type sealed struct {
	private tpm2.TPM2BPrivate
	public  tpm2.TPM2BPublic
	policy  []byte
}

// parseTPMToken decodes and checks one systemd-tpm2 token from a volume
// header (outside input): sha256 bank, ECC (or unnamed) primary, no PIN,
// a blob that splits into exactly a TPM2B_PRIVATE and a TPM2B_PUBLIC whose
// authPolicy is the token's policy hash, and an object that can only be
// used through that policy.
func parseTPMToken(raw json.RawMessage) (TPMToken, *sealed, error) {
	var t TPMToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return TPMToken{}, nil, fmt.Errorf("%w: %v", ErrTPMToken, err)
	}
	bad := func(format string, a ...any) (TPMToken, *sealed, error) {
		return TPMToken{}, nil, fmt.Errorf("%w: "+format, append([]any{ErrTPMToken}, a...)...)
	}
	switch {
	case t.Type != TPMTokenType:
		return bad("type %q", t.Type)
	case len(t.Keyslots) != 1:
		return bad("names %d keyslots, want 1", len(t.Keyslots))
	case t.PCRBank != "sha256":
		return bad("PCR bank %q, want sha256", t.PCRBank)
	case t.PrimaryAlg != "" && t.PrimaryAlg != "ecc":
		return bad("primary algorithm %q, want ecc", t.PrimaryAlg)
	case t.PIN:
		return bad("needs a PIN; nothing here can type one")
	case len(t.Blob) > base64.StdEncoding.EncodedLen(maxTPMBlob):
		return bad("blob above %d bytes", maxTPMBlob)
	}
	policy, err := hex.DecodeString(t.PolicyHash)
	if err != nil || len(policy) != sha256.Size {
		return bad("policy hash is not 32 bytes of hex")
	}
	blob, err := base64.StdEncoding.DecodeString(t.Blob)
	if err != nil {
		return bad("blob is not base64")
	}
	s := &sealed{policy: policy}
	rest, err := take2B(blob, &s.private)
	if err != nil {
		return bad("blob private part: %v", err)
	}
	if rest, err = take2B(rest, &s.public); err != nil {
		return bad("blob public part: %v", err)
	}
	if len(rest) != 0 {
		return bad("%d bytes after the blob's public part", len(rest))
	}
	pub, err := s.public.Contents()
	if err != nil {
		return bad("public area: %v", err)
	}
	a := pub.ObjectAttributes
	switch {
	case pub.Type != tpm2.TPMAlgKeyedHash || pub.NameAlg != tpm2.TPMAlgSHA256:
		return bad("sealed object is not a sha256 keyed-hash object")
	case a.UserWithAuth || !a.FixedTPM || !a.FixedParent:
		return bad("sealed object can be used without its PCR policy or moved")
	case !bytes.Equal(pub.AuthPolicy.Buffer, policy):
		return bad("sealed object's policy differs from the token's policy hash")
	}
	return t, s, nil
}

// take2B reads one size-prefixed TPM2B structure from b into v.
func take2B[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte, v P) ([]byte, error) {
	if len(b) < 2 {
		return nil, errors.New("short")
	}
	n := int(b[0])<<8 | int(b[1])
	if n == 0 || len(b) < 2+n {
		return nil, fmt.Errorf("size %d of %d bytes", n, len(b)-2)
	}
	got, err := tpm2.Unmarshal[T, P](b[:2+n])
	if err != nil {
		return nil, err
	}
	*v = *got
	return b[2+n:], nil
}

// Enroll implements KeySource: a fresh secret sealed to the current PCRs.
func (k TPMKey) Enroll(ctx context.Context) (Enrollment, error) {
	pcrs, err := k.pcrs()
	if err != nil {
		return Enrollment{}, err
	}
	rnd := k.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	secret := make([]byte, tpmSecretLen)
	defer lockKey(secret)()
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return Enrollment{}, fmt.Errorf("tpm secret: %w", err)
	}
	t, err := k.open()
	if err != nil {
		return Enrollment{}, err
	}
	defer t.Close()
	srk, err := createSRK(t)
	if err != nil {
		return Enrollment{}, err
	}
	defer flush(t, srk.ObjectHandle)

	policy, err := currentPCRPolicy(t, pcrs)
	if err != nil {
		return Enrollment{}, err
	}
	srkPub, err := srk.OutPublic.Contents()
	if err != nil {
		return Enrollment{}, fmt.Errorf("%w: SRK public: %v", ErrTPMUnavailable, err)
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{
			Handle: srk.ObjectHandle, Name: srk.Name,
			// The secret crosses the bus encrypted to the SRK.
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.AESEncryption(128, tpm2.EncryptIn),
				tpm2.Salted(srk.ObjectHandle, *srkPub)),
		},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type:    tpm2.TPMAlgKeyedHash,
			NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{
				FixedTPM: true, FixedParent: true, NoDA: true,
			},
			AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
				&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
		}),
	}.Execute(t)
	if err != nil {
		return Enrollment{}, fmt.Errorf("%w: seal: %v", ErrTPMUnavailable, err)
	}
	blob := append(tpm2.Marshal(rsp.OutPrivate), tpm2.Marshal(rsp.OutPublic)...)
	tok, err := json.Marshal(TPMToken{
		Type: TPMTokenType, Keyslots: []string{"0"},
		Blob: base64.StdEncoding.EncodeToString(blob), PCRs: pcrs, PCRBank: "sha256",
		PrimaryAlg: "ecc", PolicyHash: hex.EncodeToString(policy),
	})
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{
		Passphrase: passphraseOf(secret),
		KDF:        luks2.PBKDF2Params(),
		Tokens:     []json.RawMessage{tok},
	}, nil
}

// passphraseOf is systemd's framing: the keyslot passphrase is the base64
// text of the sealed secret.
func passphraseOf(secret []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(secret)))
	base64.StdEncoding.Encode(out, secret)
	return out
}

// Passphrase implements KeySource: unseal the secret from the volume's
// systemd-tpm2 token. A token sealed to another PCR set than configured is
// refused; PCRs that changed since sealing give ErrPCRMismatch, decided
// before the TPM is asked to unseal.
func (k TPMKey) Passphrase(ctx context.Context, meta *luks2.Metadata) ([]byte, error) {
	want, err := k.pcrs()
	if err != nil {
		return nil, err
	}
	toks := meta.TokensOfType(TPMTokenType)
	if len(toks) != 1 {
		return nil, fmt.Errorf("%w: %d systemd-tpm2 tokens, want 1", ErrTPMToken, len(toks))
	}
	tok, s, err := parseTPMToken(toks[0].Raw)
	if err != nil {
		return nil, err
	}
	got := slices.Clone(tok.PCRs)
	slices.Sort(got)
	if !slices.Equal(got, want) || !slices.Equal(got, tok.PCRs) {
		return nil, fmt.Errorf("%w: sealed to PCRs %v, this appliance seals to %v", ErrTPMToken, tok.PCRs, want)
	}
	t, err := k.open()
	if err != nil {
		return nil, err
	}
	defer t.Close()
	srk, err := createSRK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, srk.ObjectHandle)
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    s.private,
		InPublic:     s.public,
	}.Execute(t)
	if err != nil {
		// Not ours: sealed under another TPM's SRK, or damaged.
		return nil, fmt.Errorf("%w: the TPM does not accept the sealed object: %v", ErrTPMToken, err)
	}
	defer flush(t, loaded.ObjectHandle)

	srkPub, err := srk.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("%w: SRK public: %v", ErrTPMUnavailable, err)
	}
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srk.ObjectHandle, *srkPub), tpm2.AESEncryption(128, tpm2.EncryptOut))
	if err != nil {
		return nil, fmt.Errorf("%w: policy session: %v", ErrTPMUnavailable, err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection(want)}).Execute(t); err != nil {
		return nil, fmt.Errorf("%w: PolicyPCR: %v", ErrTPMUnavailable, err)
	}
	dig, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("%w: PolicyGetDigest: %v", ErrTPMUnavailable, err)
	}
	if !bytes.Equal(dig.PolicyDigest.Buffer, s.policy) {
		return nil, fmt.Errorf("%w: PCR %s (sha256) no longer hold their sealing-time values", ErrPCRMismatch, pcrList(want))
	}
	out, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{
		Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: sess,
	}}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("%w: unseal: %v", ErrPCRMismatch, err)
	}
	secret := out.OutData.Buffer
	defer clear(secret)
	if len(secret) != tpmSecretLen {
		return nil, fmt.Errorf("%w: unsealed %d bytes, want %d", ErrTPMToken, len(secret), tpmSecretLen)
	}
	return passphraseOf(secret), nil
}

func (k TPMKey) open() (transport.TPMCloser, error) {
	if k.Open == nil {
		return nil, fmt.Errorf("%w: no TPM configured", ErrTPMUnavailable)
	}
	t, err := k.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTPMUnavailable, err)
	}
	return t, nil
}

// createSRK makes the TCG reference ECC P-256 storage key (deterministic for
// a TPM's owner seed, so it is the same parent at every boot).
func createSRK(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("%w: create SRK: %v", ErrTPMUnavailable, err)
	}
	return rsp, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}

func selection(pcrs []int) tpm2.TPMLPCRSelection {
	u := make([]uint, len(pcrs))
	for i, p := range pcrs {
		u[i] = uint(p)
	}
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(u...),
	}}}
}

// currentPCRPolicy reads the sha256 PCRs and computes the PolicyPCR digest
// that holds them: sha256 over the values in ascending PCR order.
func currentPCRPolicy(t transport.TPM, pcrs []int) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(pcrs)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("%w: read PCRs: %v", ErrTPMUnavailable, err)
	}
	if len(rsp.PCRValues.Digests) != len(pcrs) {
		return nil, fmt.Errorf("%w: the sha256 bank lacks some of PCR %s", ErrTPMUnavailable, pcrList(pcrs))
	}
	values := make([][]byte, len(pcrs))
	for i, d := range rsp.PCRValues.Digests {
		values[i] = d.Buffer
	}
	return PCRPolicyDigest(pcrs, values)
}

// PCRPolicyDigest is the policy digest of a fresh session after one
// TPM2_PolicyPCR over the sha256 PCRs pcrs (ascending) holding values.
func PCRPolicyDigest(pcrs []int, values [][]byte) ([]byte, error) {
	h := sha256.New()
	for _, v := range values {
		h.Write(v)
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: selection(pcrs)}).Update(calc); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
}

func pcrList(p []int) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
