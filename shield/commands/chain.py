"""`shield chain up|down|status|deploy`: the embedded devnet and the registry deployment."""

from __future__ import annotations

import dataclasses

import click

from shield.commands._common import emit_json, home_line, json_option, notice, settings

__all__ = ["chain"]


@click.group()
def chain() -> None:
    """Start, stop and inspect the embedded anvil devnet; deploy the registry."""


@chain.command()
@json_option
def up(as_json: bool) -> None:
    """Start the devnet (state under <home>/chain/) and deploy the registry if needed.

    Prints the home first: the state every later command of this home uses."""
    from shield.ledger import Devnet, open_ledger
    from shield.provenance.keystore import ensure_keystore

    cfg = settings()
    if not cfg.chain.embedded:
        raise click.UsageError("a remote chain is configured (SHIELD_RPC_URL); there is no devnet to start")
    if not as_json:
        click.echo(home_line(cfg))
    devnet = Devnet(cfg)
    pid = devnet.start()
    keys = ensure_keystore(cfg)
    ledger = open_ledger(cfg, keys.eth_private_key, start_devnet=False)
    if ledger.unavailable is not None:
        raise ledger.unavailable
    ledger.close()
    result = {"home": cfg.home, "pid": pid, "url": devnet.url, "chain_id": ledger.chain_id,
              "registry": ledger.registry_address}
    if as_json:
        emit_json(result)
    else:
        click.echo(f"devnet running: pid {pid}, {devnet.url}, chain {ledger.chain_id}, registry {ledger.registry_address}")


@chain.command()
@json_option
def down(as_json: bool) -> None:
    """Stop the devnet (its state is saved to disk first)."""
    from shield.ledger import Devnet

    cfg = settings()
    stopped = Devnet(cfg).stop()
    if as_json:
        emit_json({"home": cfg.home, "stopped": stopped})
    else:
        click.echo(home_line(cfg))
        click.echo("devnet stopped (`shield chain up` starts it again)" if stopped else "devnet was not running")


@chain.command()
@json_option
def status(as_json: bool) -> None:
    """Show the devnet process, the node and the recorded registry deployment."""
    from shield.ledger import Devnet, open_ledger

    cfg = settings()
    doc: dict[str, object] = {"home": cfg.home, "embedded": cfg.chain.embedded, "rpc_url": cfg.chain.rpc_url}
    if cfg.chain.embedded:
        doc["devnet"] = dataclasses.asdict(Devnet(cfg).status())
    ledger = open_ledger(cfg, None, start_devnet=False)
    doc.update(chain_id=ledger.chain_id, registry=ledger.registry_address, deployment_block=ledger.deployment_block,
               online=ledger.online, problem=None if ledger.unavailable is None else str(ledger.unavailable),
               queued=sum(1 for i in ledger.outbox.all_items() if i.state in ("pending", "sent", "confirming")))
    ledger.close()
    if as_json:
        emit_json(doc)
        return
    click.echo(home_line(cfg))
    if cfg.chain.embedded:
        click.echo(f"devnet {doc['devnet']['url']}: {doc['devnet']['message']}")  # type: ignore[index]
    click.echo(f"chain: {doc['chain_id']}  registry: {doc['registry']}  online: {doc['online']}  queued: {doc['queued']}")
    if doc["problem"]:
        notice(str(doc["problem"]))


@chain.command()
@click.option("--force", is_flag=True, help="Deploy a new registry even if one is recorded for this chain.")
@json_option
def deploy(force: bool, as_json: bool) -> None:
    """Deploy the registry with the keystore account and record it in <home>/chain/deployment.json."""
    from eth_account import Account
    from eth_utils import to_checksum_address

    from shield.ledger import ChainUnavailableError, Devnet
    from shield.ledger.artifact import load_artifact
    from shield.ledger.client import RegistryClient, connect
    from shield.ledger.deployment import deploy_registry, fund_on_devnet, read_deployment
    from shield.provenance.keystore import ensure_keystore

    cfg = settings()
    url = cfg.chain.rpc_url
    if cfg.chain.embedded:
        devnet = Devnet(cfg)
        devnet.start()
        url = devnet.url
    assert url is not None
    artifact = load_artifact()
    w3 = connect(url)
    chain_id = RegistryClient(w3, "0x" + "00" * 20, artifact).check_chain_id(cfg.chain.chain_id)
    existing = read_deployment(cfg, chain_id)
    if existing is not None and not force and w3.eth.get_code(to_checksum_address(existing.address)):
        raise click.UsageError(f"a registry is already deployed at {existing.address}; use --force for a new one")
    keys = ensure_keystore(cfg)
    account = Account.from_key(keys.eth_private_key)
    if cfg.chain.embedded:
        fund_on_devnet(w3, account.address)
    try:
        dep = deploy_registry(cfg, w3, artifact, account)
    except (ConnectionError, OSError) as exc:
        raise ChainUnavailableError(f"deploying failed: {exc}") from exc
    if as_json:
        emit_json(dep)
    else:
        click.echo(f"registry deployed at {dep.address} (chain {dep.chain_id}, block {dep.block}, tx {dep.tx_hash})")
        if not cfg.chain.embedded:
            notice(f"set SHIELD_REGISTRY={dep.address} on machines that verify against this chain")
