//! The worker's DTLS certificate and mediasoup's DTLS JSON shapes (`DtlsParameters`,
//! `DtlsFingerprint`, `DtlsRole`, `DtlsState`).
//!
//! A certificate is made once per worker (as mediasoup does at worker start): an ECDSA P-256
//! self-signed certificate, or one loaded from PEM. Its fingerprints are computed once, for every
//! algorithm mediasoup announces.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::Error;

/// Common name of a generated certificate.
const GENERATED_COMMON_NAME: &str = "shardsfu";

/// A fingerprint's hash function, as mediasoup spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FingerprintAlgorithm {
    #[serde(rename = "sha-1")]
    Sha1,
    #[serde(rename = "sha-224")]
    Sha224,
    #[serde(rename = "sha-256")]
    Sha256,
    #[serde(rename = "sha-384")]
    Sha384,
    #[serde(rename = "sha-512")]
    Sha512,
}

impl FingerprintAlgorithm {
    /// All algorithms, in the order mediasoup lists a transport's fingerprints.
    pub const ALL: [FingerprintAlgorithm; 5] = [
        FingerprintAlgorithm::Sha1,
        FingerprintAlgorithm::Sha224,
        FingerprintAlgorithm::Sha256,
        FingerprintAlgorithm::Sha384,
        FingerprintAlgorithm::Sha512,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FingerprintAlgorithm::Sha1 => "sha-1",
            FingerprintAlgorithm::Sha224 => "sha-224",
            FingerprintAlgorithm::Sha256 => "sha-256",
            FingerprintAlgorithm::Sha384 => "sha-384",
            FingerprintAlgorithm::Sha512 => "sha-512",
        }
    }

    /// The fingerprint of DER bytes `der`: uppercase hex, colon separated.
    pub fn fingerprint(self, der: &[u8]) -> String {
        match self {
            FingerprintAlgorithm::Sha1 => hex_colon(&sha1::Sha1::digest(der)),
            FingerprintAlgorithm::Sha224 => hex_colon(&sha2::Sha224::digest(der)),
            FingerprintAlgorithm::Sha256 => hex_colon(&sha2::Sha256::digest(der)),
            FingerprintAlgorithm::Sha384 => hex_colon(&sha2::Sha384::digest(der)),
            FingerprintAlgorithm::Sha512 => hex_colon(&sha2::Sha512::digest(der)),
        }
    }
}

fn hex_colon(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// `{ algorithm: "sha-256", value: "AB:CD:..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DtlsFingerprint {
    pub algorithm: FingerprintAlgorithm,
    pub value: String,
}

impl DtlsFingerprint {
    /// Whether this fingerprint is that of the DER certificate `der` (hex compared case-blind).
    pub fn matches(&self, der: &[u8]) -> bool {
        self.algorithm.fingerprint(der).eq_ignore_ascii_case(self.value.trim())
    }
}

/// mediasoup's `DtlsRole`: `"auto"`, `"client"` or `"server"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DtlsRole {
    #[default]
    Auto,
    Client,
    Server,
}

/// mediasoup's `DtlsState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DtlsState {
    #[default]
    New,
    Connecting,
    Connected,
    Failed,
    Closed,
}

/// mediasoup's `DtlsParameters`: `{ role?: DtlsRole, fingerprints: DtlsFingerprint[] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DtlsParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<DtlsRole>,
    pub fingerprints: Vec<DtlsFingerprint>,
}

/// The worker's certificate: the chain and key DTLS uses, and the fingerprints it announces.
#[derive(Clone)]
pub struct DtlsCertificate {
    certificate: rtc_dtls::crypto::Certificate,
    fingerprints: Vec<DtlsFingerprint>,
}

impl std::fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsCertificate").field("fingerprints", &self.fingerprints).finish_non_exhaustive()
    }
}

impl DtlsCertificate {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, Error> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Error::other(format!("DTLS key generation failed: {e}")))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| Error::other(format!("DTLS certificate parameters: {e}")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, GENERATED_COMMON_NAME);
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| Error::other(format!("DTLS certificate generation failed: {e}")))?;
        Self::from_parts(vec![cert.der().to_vec()], &key_pair)
    }

    /// A certificate from PEM text: `cert_pem` holds one or more `CERTIFICATE` blocks (leaf
    /// first), `key_pem` a PKCS#8 `PRIVATE KEY` (ECDSA P-256, Ed25519 or RSA).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let blocks =
            pem::parse_many(cert_pem).map_err(|e| Error::type_error(format!("invalid certificate PEM: {e}")))?;
        let chain: Vec<Vec<u8>> = blocks
            .into_iter()
            .filter(|block| block.tag() == "CERTIFICATE")
            .map(|block| block.into_contents())
            .collect();
        if chain.is_empty() {
            return Err(Error::type_error("no CERTIFICATE block in the certificate PEM"));
        }
        let key_pair = rcgen::KeyPair::from_pem(key_pem)
            .map_err(|e| Error::type_error(format!("invalid private key PEM: {e}")))?;
        Self::from_parts(chain, &key_pair)
    }

    /// [`Self::from_pem`] on the contents of two files. Reads the files: call it at worker start,
    /// not from the engine core.
    pub fn from_pem_files(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| Error::other(format!("cannot read {}: {e}", path.display())))
        };
        Self::from_pem(&read(cert_path.as_ref())?, &read(key_path.as_ref())?)
    }

    fn from_parts(chain: Vec<Vec<u8>>, key_pair: &rcgen::KeyPair) -> Result<Self, Error> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| Error::other(format!("no DTLS crypto provider: {e}")))?;
        let private_key = rtc_dtls::crypto::CryptoPrivateKey::from_key_pair(key_pair, provider.crypto())
            .map_err(|e| Error::unsupported(format!("unusable DTLS private key: {e}")))?;
        let fingerprints = FingerprintAlgorithm::ALL
            .into_iter()
            .map(|algorithm| DtlsFingerprint { algorithm, value: algorithm.fingerprint(&chain[0]) })
            .collect();
        let certificate =
            rtc_dtls::crypto::Certificate { certificate: chain.into_iter().map(Into::into).collect(), private_key };
        Ok(DtlsCertificate { certificate, fingerprints })
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        self.certificate.certificate[0].as_ref()
    }

    /// The leaf certificate as PEM.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der()))
    }

    /// The fingerprints for every algorithm, as a transport's `dtlsParameters` announce them.
    pub fn fingerprints(&self) -> &[DtlsFingerprint] {
        &self.fingerprints
    }

    /// The fingerprint for one algorithm.
    pub fn fingerprint(&self, algorithm: FingerprintAlgorithm) -> &DtlsFingerprint {
        // Every algorithm is computed at construction, in `ALL`'s order.
        &self.fingerprints[FingerprintAlgorithm::ALL.iter().position(|a| *a == algorithm).unwrap_or(0)]
    }

    pub(crate) fn dtls_certificate(&self) -> rtc_dtls::crypto::Certificate {
        self.certificate.clone()
    }
}
