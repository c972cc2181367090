"""An alert when a scheduled run fails: a Prefect automation on the Failed or Crashed state of
the ``rnnflow-nightly`` deployment's flow runs, which sends a notification block.

    python -m flows.alerts --webhook https://hooks.example.com/rnnflow     # a JSON POST there
    python -m flows.alerts --block slack-webhook/rnnflow-alerts           # any notification block

Run it once, after ``prefect deploy`` (the automation names the deployment by id), against the
server in ``PREFECT_API_URL``; running it again updates the automation in place. ``--webhook``
saves a ``custom-webhook`` notification block named ``rnnflow-alerts`` that POSTs
``{"subject": ..., "body": ...}``; ``--block`` uses a block made in the UI (Blocks -> Slack
Webhook, Microsoft Teams, email...), whose secrets the server keeps. The server's automation
services send it: no worker or flow process is involved, so a crashed worker still alerts.
"""
from __future__ import annotations

import argparse
import sys

DEPLOYMENT = "rnnflow-pipeline/rnnflow-nightly"
AUTOMATION = "rnnflow-nightly failed"
WEBHOOK_BLOCK = "rnnflow-alerts"
FAILED_EVENTS = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
SUBJECT = "rnnflow: scheduled run {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = ("Flow run {{ flow_run.name }} ({{ flow_run.id }}) of deployment {{ deployment.name }} ended "
        "{{ flow_run.state.name }}: {{ flow_run.state.message }}\n{{ flow_run|ui_url }}")


def webhook_block(url: str):
    """Save (or update) the ``custom-webhook`` block ``rnnflow-alerts`` posting to ``url``; its document id."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(
        name=WEBHOOK_BLOCK, url=url, method="POST", json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,  # the operator chose this URL: an internal chat bridge is a fair target
    )
    block.save(WEBHOOK_BLOCK, overwrite=True)
    return block._block_document_id


def existing_block(slug_and_name: str):
    """The document id of a saved notification block ``TYPE-SLUG/NAME`` (an error naming it if absent)."""
    from prefect.blocks.core import Block

    try:
        return Block.load(slug_and_name)._block_document_id
    except ValueError as error:
        raise ValueError(f"--block {slug_and_name}: {error}") from None


def failure_automation(deployment_id, block_document_id):
    """The automation: any Failed or Crashed flow run of the deployment sends the block one notification."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=AUTOMATION,
        description=f"Notifies when a flow run of {DEPLOYMENT} fails or crashes (python -m flows.alerts)",
        trigger=EventTrigger(
            expect=set(FAILED_EVENTS),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.deployment.{deployment_id}"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def install(block_document_id, deployment: str = DEPLOYMENT) -> str:
    """Create the automation, or update the one of the same name; its id."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment_id = client.read_deployment_by_name(deployment).id
        except ObjectNotFound:
            raise ValueError(f"no deployment {deployment!r} on this server: deploy first "
                             "(RNNFLOW_HOME=$PWD prefect --no-prompt deploy --all)") from None
        automation = failure_automation(deployment_id, block_document_id)
        existing = client.read_automations_by_name(AUTOMATION)
        if existing:
            client.update_automation(existing[0].id, automation)
            return str(existing[0].id)
        return str(client.create_automation(automation))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.alerts", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook", metavar="URL", help=f"POST a JSON notification to URL (saved as block {WEBHOOK_BLOCK})")
    target.add_argument("--block", metavar="TYPE/NAME", help="send through this saved notification block, "
                                                             "e.g. slack-webhook/rnnflow-alerts")
    parser.add_argument("--deployment", default=DEPLOYMENT, help=f"FLOW/DEPLOYMENT to watch (default {DEPLOYMENT})")
    args = parser.parse_args(argv)
    try:
        block_id = webhook_block(args.webhook) if args.webhook else existing_block(args.block)
        automation_id = install(block_id, args.deployment)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"automation '{AUTOMATION}' ({automation_id}): a Failed or Crashed run of {args.deployment} notifies "
          f"{args.webhook or args.block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
