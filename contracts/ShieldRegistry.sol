// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title ShieldRegistry: anchors protected photos (single records and Merkle batches),
///        lets a publisher revoke its own entries, and binds a publisher address to its
///        C2PA certificate fingerprint and fragile-watermark public key.
/// @notice Storage alone is enough to verify an entry (nodes may prune logs); events
///         carry the full hashes for auditors.
///
/// Storage layout (one slot per record, one per batch, chosen for gas):
///   records[assetId]  = | flags:8 | publisherId:32 | timestamp:40 | commitment:176 |
///                        commitment = first 22 bytes of keccak256(content || file || manifest)
///   batches[root]     = | (unused):16 | flags:8 | count:32 | timestamp:40 | publisher:160 |
///   publishers[addr]  = certFingerprint (slot 0), watermarkKey (slot 1),
///                        | id:32 | registeredAt:40 | (slot 2)
///   publisherAddresses[id - 1] = addr  (ids start at 1; 0 means "none")
///
/// Merkle batches: leaf = keccak256(0x00 || assetId || content || file || manifest),
/// node = keccak256(0x01 || min(a, b) || max(a, b)) (sorted pairs, so a proof is a
/// plain list of siblings); a lone node at the end of a level is carried up unchanged.
/// The distinct prefixes keep a leaf from ever posing as an inner node.
contract ShieldRegistry {
    struct Record {
        bytes22 commitment;
        uint40 timestamp;
        uint32 publisherId;
        uint8 flags;
    }

    struct Batch {
        address publisher;
        uint40 timestamp;
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

    mapping(bytes16 => Record) internal records;
    mapping(bytes32 => Batch) internal batches;
    mapping(address => Publisher) internal publishers;
    address[] internal publisherAddresses;

    event PublisherRegistered(
        address indexed publisher, uint32 indexed id, bytes32 certFingerprint, bytes32 watermarkKey
    );
    event Anchored(
        bytes16 indexed assetId, address indexed publisher, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash
    );
    event BatchAnchored(bytes32 indexed root, address indexed publisher, uint32 count);
    event RecordRevoked(bytes16 indexed assetId, address indexed publisher, string reason);
    event BatchRevoked(bytes32 indexed root, address indexed publisher, string reason);

    error AlreadyAnchored(bytes16 assetId, address publisher);
    error BatchExists(bytes32 root, address publisher);
    error NotFound(bytes32 key);
    error NotPublisher(bytes32 key, address publisher);
    error AlreadyRevoked(bytes32 key);
    error EmptyBatch();
    error ZeroValue();
    error LengthMismatch();
    error ReasonTooLong(uint256 length);

    // ---------------------------------------------------------------- publishers

    /// @notice Bind msg.sender to its certificate fingerprint and watermark key.
    ///         Calling again replaces both (key rotation); the event keeps the history.
    function registerPublisher(bytes32 certFingerprint, bytes32 watermarkKey) external {
        if (certFingerprint == bytes32(0) || watermarkKey == bytes32(0)) revert ZeroValue();
        Publisher storage p = publishers[msg.sender];
        uint32 id = p.id == 0 ? _newPublisherId(p) : p.id;
        p.certFingerprint = certFingerprint;
        p.watermarkKey = watermarkKey;
        p.registeredAt = uint40(block.timestamp);
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

    function publisherAddress(uint32 id) external view returns (address) {
        return id == 0 || id > publisherAddresses.length ? address(0) : publisherAddresses[id - 1];
    }

    function publisherCount() external view returns (uint256) {
        return publisherAddresses.length;
    }

    // ---------------------------------------------------------------- anchoring

    /// @notice Anchor one photo. Reverts with AlreadyAnchored if the asset id is taken.
    function anchor(bytes16 assetId, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash) external {
        _anchor(_publisherId(), assetId, contentHash, fileHash, manifestHash);
    }

    /// @notice Anchor several photos as individual records in one transaction
    ///         (all or nothing: one taken id reverts the whole call).
    function anchorMany(
        bytes16[] calldata assetIds,
        bytes32[] calldata contentHashes,
        bytes32[] calldata fileHashes,
        bytes32[] calldata manifestHashes
    ) external {
        uint256 n = assetIds.length;
        if (n == 0) revert EmptyBatch();
        if (contentHashes.length != n || fileHashes.length != n || manifestHashes.length != n) revert LengthMismatch();
        uint32 pid = _publisherId();
        for (uint256 i; i < n; ++i) {
            _anchor(pid, assetIds[i], contentHashes[i], fileHashes[i], manifestHashes[i]);
        }
    }

    /// @notice Anchor a Merkle root over `count` leaves (see leafHash / nodeHash).
    function anchorBatch(bytes32 root, uint32 count) external {
        if (root == bytes32(0)) revert ZeroValue();
        if (count == 0) revert EmptyBatch();
        Batch storage b = batches[root];
        if (b.timestamp != 0) revert BatchExists(root, b.publisher);
        batches[root] = Batch(msg.sender, uint40(block.timestamp), count, 0);
        emit BatchAnchored(root, msg.sender, count);
    }

    // ---------------------------------------------------------------- revocation

    function revokeRecord(bytes16 assetId, string calldata reason) external {
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong(bytes(reason).length);
        Record storage r = records[assetId];
        if (r.timestamp == 0) revert NotFound(bytes32(assetId));
        address owner = publisherAddresses[r.publisherId - 1];
        if (owner != msg.sender) revert NotPublisher(bytes32(assetId), owner);
        if (r.flags & REVOKED != 0) revert AlreadyRevoked(bytes32(assetId));
        r.flags |= REVOKED;
        emit RecordRevoked(assetId, msg.sender, reason);
    }

    function revokeBatch(bytes32 root, string calldata reason) external {
        if (bytes(reason).length > MAX_REASON_BYTES) revert ReasonTooLong(bytes(reason).length);
        Batch storage b = batches[root];
        if (b.timestamp == 0) revert NotFound(root);
        if (b.publisher != msg.sender) revert NotPublisher(root, b.publisher);
        if (b.flags & REVOKED != 0) revert AlreadyRevoked(root);
        b.flags |= REVOKED;
        emit BatchRevoked(root, msg.sender, reason);
    }

    // ---------------------------------------------------------------- reading

    /// @notice A record as stored; timestamp 0 means "no such record".
    function recordOf(bytes16 assetId)
        external
        view
        returns (bytes22 commitment, uint40 timestamp, address publisher, bool revoked)
    {
        Record storage r = records[assetId];
        if (r.timestamp == 0) return (bytes22(0), 0, address(0), false);
        return (r.commitment, r.timestamp, publisherAddresses[r.publisherId - 1], r.flags & REVOKED != 0);
    }

    /// @notice A batch as stored; timestamp 0 means "no such batch".
    function batchOf(bytes32 root)
        external
        view
        returns (address publisher, uint40 timestamp, uint32 count, bool revoked)
    {
        Batch storage b = batches[root];
        return (b.publisher, b.timestamp, b.count, b.flags & REVOKED != 0);
    }

    /// @notice Raw storage words of many records at once (layout above), for auditors.
    function rawRecords(bytes16[] calldata assetIds) external view returns (bytes32[] memory words) {
        words = new bytes32[](assetIds.length);
        for (uint256 i; i < assetIds.length; ++i) {
            Record storage r = records[assetIds[i]];
            bytes32 w;
            assembly {
                w := sload(r.slot)
            }
            words[i] = w;
        }
    }

    /// @notice Raw storage words of many batches at once (layout above).
    function rawBatches(bytes32[] calldata roots) external view returns (bytes32[] memory words) {
        words = new bytes32[](roots.length);
        for (uint256 i; i < roots.length; ++i) {
            Batch storage b = batches[roots[i]];
            bytes32 w;
            assembly {
                w := sload(b.slot)
            }
            words[i] = w;
        }
    }

    /// @notice The commitment a verifier recomputes for a single record.
    function commitmentOf(bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash) public pure returns (bytes22) {
        return bytes22(keccak256(abi.encodePacked(contentHash, fileHash, manifestHash)));
    }

    function leafHash(bytes16 assetId, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(bytes1(0x00), assetId, contentHash, fileHash, manifestHash));
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

    /// @notice True when the photo's fields are included in an anchored, unrevoked batch.
    function isBatchMember(
        bytes32 root,
        bytes16 assetId,
        bytes32 contentHash,
        bytes32 fileHash,
        bytes32 manifestHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        Batch storage b = batches[root];
        if (b.timestamp == 0 || b.flags & REVOKED != 0) return false;
        return verifyProof(root, leafHash(assetId, contentHash, fileHash, manifestHash), proof);
    }

    // ---------------------------------------------------------------- internals

    function _anchor(uint32 pid, bytes16 assetId, bytes32 contentHash, bytes32 fileHash, bytes32 manifestHash)
        internal
    {
        if (assetId == bytes16(0)) revert ZeroValue();
        Record storage r = records[assetId];
        if (r.timestamp != 0) revert AlreadyAnchored(assetId, publisherAddresses[r.publisherId - 1]);
        records[assetId] = Record(commitmentOf(contentHash, fileHash, manifestHash), uint40(block.timestamp), pid, 0);
        emit Anchored(assetId, msg.sender, contentHash, fileHash, manifestHash);
    }

    function _publisherId() internal returns (uint32) {
        Publisher storage p = publishers[msg.sender];
        uint32 id = p.id;
        return id == 0 ? _newPublisherId(p) : id;
    }

    function _newPublisherId(Publisher storage p) internal returns (uint32 id) {
        publisherAddresses.push(msg.sender);
        id = uint32(publisherAddresses.length);
        p.id = id;
    }
}
