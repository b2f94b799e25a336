// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title ShieldRegistry: anchors protected photos (single records and Merkle batches)
///        with their PDQ perceptual fingerprints under the publisher that sent them, lets a publisher revoke its own entries, and
///        binds a publisher address to its C2PA certificate fingerprint and fragile-watermark
///        public key together with a proof that it holds both private keys.
/// @notice Storage alone is enough to verify an entry (nodes may prune logs); events
///         carry the full hashes for auditors.
///
/// Squatting and hostile revocation: every entry lives under its own publisher's key,
///   records[keccak256(publisher || assetId)], batches[keccak256(publisher || root)],
/// so an anchor by another address lands in that address's own slot: it can neither
/// block a publisher's asset id nor reach (and so revoke) its record. Which publisher a
/// photo belongs to is decided by the verifier from the publisher proof (see
/// registerPublisher and contracts/README.md), never by who anchored first.
///
/// Storage layout (one slot per record, one per batch, chosen for gas):
///   records[key]      = | flags:8 | publisherId:32 | timestamp:40 | commitment:176 |
///                        commitment = first 22 bytes of keccak256(content || file || manifest || pdq)
///   batches[key]      = | flags:8 | count:32 | publisherId:32 | timestamp:40 | members:144 |
///                        members = first 18 bytes of keccak256(the event's member list)
///   publishers[addr]  = certFingerprint (slot 0), watermarkKey (slot 1),
///                        | id:32 | registeredAt:40 | (slot 2)
///   proofs[addr]      = the publisher proof bytes (format in shield/ledger/proof.py)
///   claimants[fp]     = addresses that registered a watermark key with fingerprint fp
///                        (first 8 bytes of sha256("shield.fragile.v1/key\0" || key), the
///                        fingerprint the watermark itself carries)
///   publisherAddresses[id - 1] = addr  (ids start at 1; 0 means "none")
///
/// PDQ fingerprint: the 32-byte PDQ hash of the protected pixels (zero: none computed). It
/// is committed to (record commitment, batch leaf, batch members digest) and carried in the
/// events, so anyone can find a re-encoded copy's record by its fingerprint from the logs
/// and check what the logs say against storage.
///
/// Merkle batches: leaf = keccak256(0x00 || assetId || content || file || manifest || pdq),
/// node = keccak256(0x01 || min(a, b) || max(a, b)) (sorted pairs, so a proof is a
/// plain list of siblings); a lone node at the end of a level is carried up unchanged.
/// The distinct prefixes keep a leaf from ever posing as an inner node. A batch's event
/// carries its members as packed (assetId:16 || pdq:32) entries, so a photo of a batch can be
/// found (by asset id or fingerprint) without its proof sidecar.
contract ShieldRegistry {
    struct Record {
        bytes22 commitment;
        uint40 timestamp;
        uint32 publisherId;
        uint8 flags;
    }

    struct Batch {
        bytes18 members;
        uint40 timestamp;
        uint32 publisherId;
        uint32 count;
        uint8 flags;
    }

    struct Publisher {
        bytes32 certFingerprint;
        bytes32 watermarkKey;
        uint40 registeredAt;
        uint32 id;
    }

    uint8 internal constant REVOKED = 1;
    /// Longest revocation reason accepted, in bytes: enough for a sentence, bounded so
    /// a revocation's cost stays predictable.
    uint256 public constant MAX_REASON_BYTES = 256;
    /// Deepest Merkle proof accepted by the on-chain check (2^64 leaves).
    uint256 public constant MAX_PROOF_DEPTH = 64;
    /// Bytes per batch member in BatchAnchored's member list: asset id (16) and PDQ (32).
    uint256 public constant MEMBER_BYTES = 48;
    /// Longest publisher proof accepted: a certificate of up to ~1.8 kB plus two signatures.
    uint256 public constant MAX_PUBLISHER_PROOF_BYTES = 2048;
    /// Shortest publisher proof accepted: header, two signatures, a minimal certificate.
    uint256 public constant MIN_PUBLISHER_PROOF_BYTES = 192;

    /// Block the registry was deployed in: where a reader with no record of the deployment
    /// starts its event scans (a public chain has millions of blocks before it).
    uint256 public deploymentBlock;

    mapping(bytes32 => Record) internal records;
    mapping(bytes32 => Batch) internal batches;
    mapping(address => Publisher) internal publishers;
    mapping(address => bytes) internal proofs;
    mapping(bytes8 => address[]) internal claimants;
    address[] internal publisherAddresses;

    event PublisherRegistered(
        address indexed publisher, uint32 indexed id, bytes32 certFingerprint, bytes32 watermarkKey
    );
    event Anchored(
        bytes16 indexed assetId,
        address indexed publisher,
        bytes32 contentHash,
        bytes32 fileHash,
        bytes32 manifestHash,
        bytes32 pdq
    );
    /// `members`: `count` packed (assetId:16 || pdq:32) entries, in the order the publisher sent them.
    event BatchAnchored(bytes32 indexed root, address indexed publisher, uint32 count, bytes members);
    event RecordRevoked(bytes16 indexed assetId, address indexed publisher, string reason);
    event BatchRevoked(bytes32 indexed root, address indexed publisher, string reason);

    error AlreadyAnchored(bytes16 assetId, address publisher);
    error BatchExists(bytes32 root, address publisher);
    error NotFound(bytes32 key);
    error NotRegistered(address publisher);
    error AlreadyRevoked(bytes32 key);
    error EmptyBatch();
    error ZeroValue();
    error LengthMismatch();
    error ReasonTooLong(uint256 length);
    error BadProofLength(uint256 length);

    constructor() {
        deploymentBlock = block.number;
    }

    // ---------------------------------------------------------------- publishers

    /// @notice Bind msg.sender to its certificate fingerprint and watermark key, with the
    ///         proof that it holds both private keys: the leaf certificate and signatures
    ///         by the C2PA signing key and by the watermark key over (chain id, this
    ///         registry, msg.sender, fingerprint, watermark key). The signatures are
    ///         checked by every verifier and auditor (no precompile verifies Ed25519); a
    ///         registration whose proof fails is ignored by them and flagged by the audit.
    ///         Calling again replaces all three (key rotation); the event keeps the history.
    function registerPublisher(bytes32 certFingerprint, bytes32 watermarkKey, bytes calldata proof) external {
        if (certFingerprint == bytes32(0) || watermarkKey == bytes32(0)) revert ZeroValue();
        if (proof.length < MIN_PUBLISHER_PROOF_BYTES || proof.length > MAX_PUBLISHER_PROOF_BYTES) {
            revert BadProofLength(proof.length);
        }
        Publisher storage p = publishers[msg.sender];
        uint32 id = p.id == 0 ? _newPublisherId(p) : p.id;
        if (p.watermarkKey != watermarkKey) claimants[watermarkFingerprint(watermarkKey)].push(msg.sender);
        p.certFingerprint = certFingerprint;
        p.watermarkKey = watermarkKey;
        p.registeredAt = uint40(block.timestamp);
        proofs[msg.sender] = proof;
        emit PublisherRegistered(msg.sender, id, certFingerprint, watermarkKey);
    }

    function publisherOf(address publisher)
        external
        view
        returns (bytes32 certFingerprint, bytes32 watermarkKey, uint40 registeredAt, uint32 id)
    {
        Publisher storage p = publishers[publisher];
        return (p.certFingerprint, p.watermarkKey, p.registeredAt, p.id);
    }

    /// @notice The stored publisher proof of `publisher` (empty when never registered).
    function publisherProof(address publisher) external view returns (bytes memory) {
        return proofs[publisher];
    }

    /// @notice Addresses that registered a watermark key with fingerprint `fp`, from
    ///         `offset`, at most `limit` of them (registrations are paid, so the list
    ///         only grows by an attacker's gas; verifiers keep those whose proof holds).
    function claimantsOf(bytes8 fp, uint256 offset, uint256 limit) external view returns (address[] memory out) {
        address[] storage all = claimants[fp];
        uint256 end = offset + limit < all.length ? offset + limit : all.length;
        out = new address[](end > offset ? end - offset : 0);
        for (uint256 i = offset; i < end; ++i) {
            out[i - offset] = all[i];
        }
    }

    function watermarkFingerprint(bytes32 watermarkKey) public pure returns (bytes8) {
        return bytes8(sha256(abi.encodePacked("shield.fragile.v1/key", bytes1(0x00), watermarkKey)));
    }

    function publisherAddress(uint32 id) external view returns (address) {
        return id == 0 || id > publisherAddresses.length ? address(0) : publisherAddresses[id - 1];
    }

    function publisherCount() external view returns (uint256) {
        return publisherAddresses.length;
    }

    // ---------------------------------------------------------------- anchoring

    /// @notice Anchor one photo under msg.sender (a registered publisher). Reverts with
    ///         AlreadyAnchored if msg.sender already anchored this asset id. `pdq` is the
    ///         photo's PDQ fingerprint (zero when none was computed).
    function anchor(bytes16 assetId, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash, bytes32 pdq)
        external
    {
        _anchor(_publisherId(), assetId, contentHash, fileHash, manifestHash, pdq);
    }

    /// @notice Anchor several photos as individual records in one transaction
    ///         (all or nothing: one id already anchored by msg.sender reverts the call).
    function anchorMany(
        bytes16[] calldata assetIds,
        bytes32[] calldata contentHashes,
        bytes32[] calldata fileHashes,
        bytes32[] calldata manifestHashes,
        bytes32[] calldata pdqs
    ) external {
        uint256 n = assetIds.length;
        if (n == 0) revert EmptyBatch();
        if (contentHashes.length != n || fileHashes.length != n || manifestHashes.length != n || pdqs.length != n) {
            revert LengthMismatch();
        }
        uint32 pid = _publisherId();
        for (uint256 i; i < n; ++i) {
            _anchor(pid, assetIds[i], contentHashes[i], fileHashes[i], manifestHashes[i], pdqs[i]);
        }
    }

    /// @notice Anchor a Merkle root (see leafHash / nodeHash) under msg.sender, with the
    ///         batch's members: packed (assetId:16 || pdq:32) entries, one per leaf. Storage
    ///         keeps their digest (membersDigest), the event carries them.
    function anchorBatch(bytes32 root, bytes calldata members) external {
        if (root == bytes32(0)) revert ZeroValue();
        if (members.length == 0) revert EmptyBatch();
        if (members.length % MEMBER_BYTES != 0) revert LengthMismatch();
        uint32 pid = _publisherId();
        Batch storage b = batches[batchKey(msg.sender, root)];
        if (b.timestamp != 0) revert BatchExists(root, msg.sender);
        uint32 count = uint32(members.length / MEMBER_BYTES);
        b.members = membersDigest(members);
        b.timestamp = uint40(block.timestamp);
        b.publisherId = pid;
        b.count = count;
        emit BatchAnchored(root, msg.sender, count, members);
    }

    // ---------------------------------------------------------------- revocation

    /// @notice Revoke msg.sender's own record; nobody else's is reachable from here.
    function revokeRecord(bytes16 assetId, string calldata reason) external {
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong(bytes(reason).length);
        Record storage r = records[recordKey(msg.sender, assetId)];
        if (r.timestamp == 0) revert NotFound(bytes32(assetId));
        if (r.flags & REVOKED != 0) revert AlreadyRevoked(bytes32(assetId));
        r.flags |= REVOKED;
        emit RecordRevoked(assetId, msg.sender, reason);
    }

    /// @notice Revoke msg.sender's own batch.
    function revokeBatch(bytes32 root, string calldata reason) external {
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong(bytes(reason).length);
        Batch storage b = batches[batchKey(msg.sender, root)];
        if (b.timestamp == 0) revert NotFound(root);
        if (b.flags & REVOKED != 0) revert AlreadyRevoked(root);
        b.flags |= REVOKED;
        emit BatchRevoked(root, msg.sender, reason);
    }

    // ---------------------------------------------------------------- reading

    function recordKey(address publisher, bytes16 assetId) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(publisher, assetId));
    }

    function batchKey(address publisher, bytes32 root) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(publisher, root));
    }

    /// @notice `publisher`'s record of `assetId` as stored; timestamp 0 means "no such record".
    function recordOf(address publisher, bytes16 assetId)
        external
        view
        returns (bytes22 commitment, uint40 timestamp, bool revoked)
    {
        Record storage r = records[recordKey(publisher, assetId)];
        return (r.commitment, r.timestamp, r.flags & REVOKED != 0);
    }

    /// @notice `publisher`'s batch `root` as stored; timestamp 0 means "no such batch".
    function batchOf(address publisher, bytes32 root)
        external
        view
        returns (uint40 timestamp, uint32 count, bool revoked, bytes18 members)
    {
        Batch storage b = batches[batchKey(publisher, root)];
        return (b.timestamp, b.count, b.flags & REVOKED != 0, b.members);
    }

    /// @notice Raw storage words of many records at once (layout above), by recordKey.
    function rawRecords(bytes32[] calldata keys) external view returns (bytes32[] memory words) {
        words = new bytes32[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            Record storage r = records[keys[i]];
            bytes32 w;
            assembly {
                w := sload(r.slot)
            }
            words[i] = w;
        }
    }

    /// @notice Raw storage words of many batches at once (layout above), by batchKey.
    function rawBatches(bytes32[] calldata keys) external view returns (bytes32[] memory words) {
        words = new bytes32[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            Batch storage b = batches[keys[i]];
            bytes32 w;
            assembly {
                w := sload(b.slot)
            }
            words[i] = w;
        }
    }

    /// @notice The commitment a verifier recomputes for a single record.
    function commitmentOf(bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash, bytes32 pdq)
        public
        pure
        returns (bytes22)
    {
        return bytes22(keccak256(abi.encodePacked(contentHash, fileHash, manifestHash, pdq)));
    }

    /// @notice The digest stored for a batch's member list (checked against its event).
    function membersDigest(bytes calldata members) public pure returns (bytes18) {
        return bytes18(keccak256(members));
    }

    function leafHash(bytes16 assetId, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash, bytes32 pdq)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(bytes1(0x00), assetId, contentHash, fileHash, manifestHash, pdq));
    }

    function nodeHash(bytes32 a, bytes32 b) public pure returns (bytes32) {
        return a < b
            ? keccak256(abi.encodePacked(bytes1(0x01), a, b))
            : keccak256(abi.encodePacked(bytes1(0x01), b, a));
    }

    /// @notice True when `leaf` with `proof` hashes up to `root`.
    function verifyProof(bytes32 root, bytes32 leaf, bytes32[] calldata proof) public pure returns (bool) {
        if (proof.length > MAX_PROOF_DEPTH) return false;
        bytes32 h = leaf;
        for (uint256 i; i < proof.length; ++i) {
            h = nodeHash(h, proof[i]);
        }
        return h == root;
    }

    /// @notice True when the photo's fields are included in `publisher`'s anchored, unrevoked batch.
    function isBatchMember(
        address publisher,
        bytes32 root,
        bytes16 assetId,
        bytes32 contentHash,
        bytes32 fileHash,
        bytes32 manifestHash,
        bytes32 pdq,
        bytes32[] calldata proof
    ) external view returns (bool) {
        Batch storage b = batches[batchKey(publisher, root)];
        if (b.timestamp == 0 || b.flags & REVOKED != 0) return false;
        return verifyProof(root, leafHash(assetId, contentHash, fileHash, manifestHash, pdq), proof);
    }

    // ---------------------------------------------------------------- internals

    function _anchor(
        uint32 pid,
        bytes16 assetId,
        bytes32 contentHash,
        bytes32 fileHash,
        bytes32 manifestHash,
        bytes32 pdq
    ) internal {
        if (assetId == bytes16(0)) revert ZeroValue();
        Record storage r = records[recordKey(msg.sender, assetId)];
        if (r.timestamp != 0) revert AlreadyAnchored(assetId, msg.sender);
        r.commitment = commitmentOf(contentHash, fileHash, manifestHash, pdq);
        r.timestamp = uint40(block.timestamp);
        r.publisherId = pid;
        emit Anchored(assetId, msg.sender, contentHash, fileHash, manifestHash, pdq);
    }

    /// A registered publisher's id; anchoring needs a registration (and so a proof).
    function _publisherId() internal view returns (uint32 id) {
        id = publishers[msg.sender].id;
        if (id == 0) revert NotRegistered(msg.sender);
    }

    function _newPublisherId(Publisher storage p) internal returns (uint32 id) {
        publisherAddresses.push(msg.sender);
        id = uint32(publisherAddresses.length);
        p.id = id;
    }
}
