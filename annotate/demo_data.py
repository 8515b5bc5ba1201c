"""The demo project's data: a small customer-support answer pipeline, written for Concord.

Three systems answer questions about a fictional storage product from a help-centre article.
Each answer is built from a known kind (good, hallucinated, unhelpful, rude, leaks an email),
so the demo grades and validators have a ground truth to agree or disagree with.

A few texts take the shapes LLM outputs take, so the reading features show on the first
visit (see READING_EXAMPLES): a Markdown answer with a Python code block, a conversation as
the input, an agent's transcript with a tool call as the output, and a long guide that shows
its beginning and folds the rest.
"""

from __future__ import annotations

import json
import random

ARTICLES = [
    ("reset-password", "How do I reset my password?",
     "To reset your password, open Settings > Security and choose 'Reset password'. A reset link is sent to your account email and stays valid for 30 minutes.",
     "Go to Settings > Security, choose 'Reset password', and use the link we email you within 30 minutes."),
    ("storage-limit", "How much storage does the Basic plan include?",
     "The Basic plan includes 200 GB of storage. The Pro plan includes 2 TB. Extra storage can be bought in 100 GB blocks.",
     "The Basic plan includes 200 GB; you can add more in 100 GB blocks or move to Pro (2 TB)."),
    ("share-folder", "Can I share a folder with someone who has no account?",
     "Folders can be shared by link. Anyone with the link can view files; editing requires an account. Links can be protected with a password on Pro plans.",
     "Yes: share it by link. People without an account can view the files but need an account to edit."),
    ("cancel", "How do I cancel my subscription?",
     "Subscriptions are cancelled under Billing > Plan > Cancel plan. Your files stay available until the end of the paid period, then the account moves to the free tier.",
     "Open Billing > Plan > Cancel plan. You keep access until the paid period ends, then move to the free tier."),
    ("restore", "I deleted a file by mistake. Can I get it back?",
     "Deleted files stay in Trash for 30 days on Basic and 180 days on Pro. Open Trash, select the file and choose Restore.",
     "Yes. Open Trash, select the file and choose Restore; files stay there 30 days on Basic (180 on Pro)."),
    ("2fa", "How do I turn on two-factor authentication?",
     "Two-factor authentication is enabled in Settings > Security > Two-factor. Concord Cloud supports authenticator apps and hardware keys, not SMS.",
     "Go to Settings > Security > Two-factor and add an authenticator app or a hardware key (SMS is not supported)."),
    ("upload-limit", "What is the largest file I can upload?",
     "Single files up to 50 GB can be uploaded with the desktop app. The web uploader accepts files up to 5 GB.",
     "Up to 5 GB in the browser and up to 50 GB with the desktop app."),
    ("offline", "Can I access my files offline?",
     "Files marked 'Available offline' in the desktop or mobile app are kept on the device and can be opened without a connection. Changes sync when you reconnect.",
     "Yes: mark files 'Available offline' in the desktop or mobile app; changes sync when you are back online."),
    ("invoice", "Where can I download my invoices?",
     "Invoices are listed under Billing > Invoices, where each can be downloaded as a PDF. Invoices are also emailed to the billing contact.",
     "Under Billing > Invoices, as PDFs; they are also emailed to your billing contact."),
    ("team-seats", "How do I add a colleague to my team?",
     "Team admins add members in Admin > Members > Invite. Each member uses one seat; seats are billed monthly.",
     "A team admin invites them in Admin > Members > Invite; each member takes one monthly-billed seat."),
    ("versions", "Does Concord Cloud keep older versions of my files?",
     "Version history keeps previous versions for 30 days on Basic and 1 year on Pro. Right-click a file and choose 'Version history' to restore one.",
     "Yes: right-click a file and open 'Version history'; versions are kept 30 days on Basic, 1 year on Pro."),
    ("encryption", "Are my files encrypted?",
     "Files are encrypted in transit with TLS 1.3 and at rest with AES-256. End-to-end encryption is available for Vault folders on Pro.",
     "Yes: TLS 1.3 in transit and AES-256 at rest; Pro adds end-to-end encrypted Vault folders."),
    ("linux", "Is there a desktop app for Linux?",
     "The desktop app is available for Windows, macOS and Ubuntu/Debian (.deb). Other distributions can use the web app or the command-line client. Scripts can use the Python SDK (pip install concord-cloud): Client.from_env() reads the token from CONCORD_TOKEN, and client.upload(path, folder=...) uploads a file.",
     "Yes, for Ubuntu and Debian (.deb); on other distributions use the web app or the command-line client."),
    ("refund", "Can I get a refund for my annual plan?",
     "Annual plans can be refunded in full within 14 days of purchase. After 14 days, cancellation stops renewal but no partial refunds are given.",
     "Within 14 days of purchase you get a full refund; after that, cancelling only stops the renewal."),
    ("photos-backup", "How do I back up photos from my phone?",
     "In the mobile app, open Settings > Camera uploads and switch it on. Photos upload over Wi-Fi by default; mobile data can be allowed in the same screen.",
     "Turn on Settings > Camera uploads in the mobile app; it uses Wi-Fi unless you allow mobile data."),
    ("transfer-owner", "How do I transfer ownership of a shared folder?",
     "The folder owner opens Share > Members, picks a member with edit rights and chooses 'Make owner'. The previous owner keeps edit access.",
     "Open Share > Members, pick a member with edit rights and choose 'Make owner'; you keep edit access."),
]

HALLUCINATIONS = {
    "reset-password": "Call our 24/7 phone line and an agent will reset your password for you within 24 hours.",
    "storage-limit": "The Basic plan includes 1 TB of storage and unlimited photo backups.",
    "share-folder": "No, sharing is only possible between users who both have paid accounts.",
    "cancel": "Cancelling deletes all of your files immediately, so download them first.",
    "restore": "Deleted files are gone for good; Concord Cloud does not keep a trash folder.",
    "2fa": "Two-factor authentication works by SMS: add your phone number under Profile.",
    "upload-limit": "There is no limit at all; any file size can be uploaded from the browser.",
    "offline": "Offline access is not available; you always need an internet connection.",
    "invoice": "Invoices are sent by post each quarter; they cannot be downloaded.",
    "team-seats": "Colleagues can join for free; teams have unlimited seats at no extra cost.",
    "versions": "Older versions are kept forever on every plan.",
    "encryption": "Files are stored unencrypted to keep uploads fast, but the data centre is guarded.",
    "linux": "There is no Linux support of any kind.",
    "refund": "Refunds are available at any time, pro-rated by the day.",
    "photos-backup": "Photos are backed up automatically by email; forward them to photos@concord.example.",
    "transfer-owner": "Ownership cannot be transferred; copy the folder to a new account instead.",
}

SYSTEMS = ["baseline-gpt", "rag-v1", "rag-v2"]
# Probability of each answer kind per system: rag-v2 is best, baseline-gpt hallucinates.
KIND_WEIGHTS = {
    "baseline-gpt": {"good": 0.45, "hallucinated": 0.35, "unhelpful": 0.1, "rude": 0.05, "leak": 0.05},
    "rag-v1": {"good": 0.65, "hallucinated": 0.1, "unhelpful": 0.15, "rude": 0.05, "leak": 0.05},
    "rag-v2": {"good": 0.85, "hallucinated": 0.05, "unhelpful": 0.05, "rude": 0.0, "leak": 0.05},
}
OPENERS = ["", "Thanks for reaching out! ", "Good question. ", "Happy to help. ", "Sure! "]
CLOSERS = ["", " Let me know if anything else comes up.", " Hope that helps!", ""]
CUSTOMERS = ["Priya", "Tom", "Aiko", "Marta", "Jonas", "Lena"]


def _answer(kind: str, article, rng: random.Random, customer: str) -> str:
    key, question, context, reference = article
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    if kind == "good":
        return f"{opener}{reference}{closer}"
    if kind == "hallucinated":
        return f"{opener}{HALLUCINATIONS[key]}{closer}"
    if kind == "unhelpful":
        return rng.choice([
            "I'm sorry, I can't help with that. Please check the help centre.",
            "That depends on many factors. Please contact support for more details.",
            "Please refer to the documentation.",
        ])
    if kind == "rude":
        return f"As the help centre clearly says, {reference[0].lower()}{reference[1:]} Please read it before asking."
    return (
        f"{opener}{reference} I've also copied our agent at {customer.lower()}.support@concord.example "
        f"on ticket #{rng.randint(10000, 99999)}."
    )


def demo_records(seed: int = 7, repeats: int = 2) -> list[dict]:
    """Per-output records in Concord's import format, with the kind as the `human` truth."""
    return _with_reading_examples(_generated_records(seed, repeats))


def _generated_records(seed: int, repeats: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for round_number in range(repeats):
        for article in ARTICLES:
            key, question, context, reference = article
            customer = CUSTOMERS[(len(records) // 3) % len(CUSTOMERS)]
            item_id = f"{key}-{round_number + 1}"
            for system in SYSTEMS:
                weights = KIND_WEIGHTS[system]
                kind = rng.choices(list(weights), weights=list(weights.values()))[0]
                output = _answer(kind, article, rng, customer)
                records.append({
                    "item_id": item_id,
                    "input": f"Customer {customer} asks: {question}",
                    "context": {"article": context},
                    "reference": reference,
                    "system": system,
                    "output": output,
                    "metadata": {"kind": kind, "article": key},
                    "human": _truth(kind),
                })
    return records


def _truth(kind: str) -> dict:
    return {
        "label": int(kind == "good"),
        "criteria": {
            "grounded": int(kind != "hallucinated"),
            "helpful": int(kind not in ("unhelpful", "hallucinated")),
            "tone": int(kind != "rude"),
        },
    }


# -- texts as LLMs write them --------------------------------------------------------------------

MARKDOWN_ANSWER = """## Concord Cloud on Linux

Yes. Which way fits depends on your distribution:

- **Ubuntu or Debian**: install the desktop app from the `.deb` package.
- **Other distributions**: use the web app or the command-line client.
- **Scripts and servers**: use the Python SDK (`pip install concord-cloud`).

### Uploading from a script

```python
from concord_cloud import Client

client = Client.from_env()  # reads the token from CONCORD_TOKEN
client.upload("report.pdf", folder="Documents")
```
"""

CHAT_INPUT = json.dumps([
    {"role": "system", "content": "You are Concord Cloud's support assistant. Answer from the help-centre article only."},
    {"role": "user", "content": "Hi! I bought the annual plan ten days ago."},
    {"role": "assistant", "content": "Thanks for telling me. How can I help with your annual plan?"},
    {"role": "user", "content": "Can I get a refund for my annual plan?"},
], indent=1)

CHAT_OUTPUT = json.dumps([
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "search_help_centre", "arguments": json.dumps({"query": "annual plan refund"})},
    }]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": "Annual plans can be refunded in full within 14 days of purchase. After 14 days, "
                "cancellation stops renewal but no partial refunds are given."},
    {"role": "assistant",
     "content": "Yes. You bought the plan ten days ago, so you are within the **14-day** window "
                "and get a full refund. After 14 days, cancelling would only stop the renewal."},
], indent=1)

# Long enough that the reading pane shows its beginning and folds the rest (SHOWN_CHARACTERS).
LONG_ANSWER = "\n".join([
    "# Getting a deleted file back",
    "",
    "Thanks for reaching out! Losing a file is stressful, so here is everything that can help.",
    "",
    "## 1. Look in Trash first",
    "",
    "Deleted files are not gone straight away: they stay in **Trash** for 30 days on Basic and "
    "180 days on Pro.",
    "",
    "1. Open **Trash** in the left-hand menu of the web app.",
    "2. Find the file. Sort by *Deleted on* if Trash holds many files.",
    "3. Select it and choose **Restore**. It goes back to the folder it was deleted from.",
    "",
    "If the folder it came from was deleted too, restore the folder first; the file comes back "
    "with it.",
    "",
    "## 2. An older version instead",
    "",
    "If the file still exists but was overwritten, you do not need Trash at all: right-click the "
    "file and open **Version history**. Versions are kept 30 days on Basic and 1 year on Pro.",
    "",
    *[
        f"- **{when}**: {what}"
        for when, what in [
            ("Deleted today", "it is in Trash; restore it as above."),
            ("Deleted last week", "still in Trash on every plan."),
            ("Deleted 45 days ago on Basic", "Trash keeps files 30 days on Basic, so it is gone."),
            ("Deleted 45 days ago on Pro", "Trash keeps files 180 days on Pro: restore it."),
            ("Overwritten yesterday", "open Version history and restore the earlier version."),
            ("Overwritten two months ago on Pro", "Version history keeps a year on Pro."),
        ]
    ],
    "",
    "## 3. Questions people ask next",
    "",
    *[
        f"**{question}**\n{answer}\n"
        for question, answer in [
            ("Does restoring count against my storage?",
             "Yes: a restored file counts again, just as before it was deleted."),
            ("Can a team admin restore a colleague's file?",
             "A file deleted from a shared folder goes to the Trash of the folder's owner, who can "
             "restore it."),
            ("Can I empty Trash to free space?",
             "Yes, but files removed from Trash cannot be restored afterwards, on any plan."),
            ("Is there an undo right after deleting?",
             "The web app shows an Undo button for a few seconds after a delete; after that, use "
             "Trash."),
            ("Do restored files keep their sharing links?",
             "Yes: links and members come back with the file or folder."),
            ("I deleted the file on my laptop. Is it in the cloud Trash too?",
             "Yes: the desktop app syncs the delete, and the file lands in the cloud Trash like any "
             "other, with the same 30 or 180 days to restore it."),
            ("Can I restore many files at once?",
             "Yes: select several files in Trash (Shift-click for a range) and choose Restore once."),
            ("What if I restore a file whose name is taken?",
             "The restored file keeps both: it comes back with \"(restored)\" after its name, so "
             "nothing is overwritten."),
            ("Does Trash keep photos from Camera uploads?",
             "Yes: photos deleted from the Camera uploads folder go to Trash like any other file."),
        ]
    ],
    "## 4. When nothing is left",
    "",
    "If the file is neither in Trash nor in Version history, it cannot be brought back: Concord "
    "Cloud keeps no copy beyond these two. To be safe next time, consider the Pro plan, whose "
    "longer Trash and year of versions cover most accidents.",
    "",
    "## 5. Keeping files safe from now on",
    "",
    "- Mark important folders *Available offline* in the desktop app, so a copy stays on your "
    "device as well.",
    "- Share folders with **view** rights when others only need to read, so nobody deletes by "
    "mistake.",
    "- Check Trash before emptying it: emptying is the one step that cannot be undone.",
    "",
    "## Summary",
    "",
    "Open Trash, select the file and choose Restore; files stay there 30 days on Basic (180 on "
    "Pro). For an overwritten file, use Version history instead. Hope that helps!",
])

# (item, system) -> what it becomes; all are good answers, so the truth stays the kind's.
READING_EXAMPLES = {
    ("linux-1", "rag-v2"): {"output": MARKDOWN_ANSWER},
    ("refund-1", "rag-v1"): {"output": CHAT_OUTPUT},
    ("restore-2", "baseline-gpt"): {"output": LONG_ANSWER},
}
# An input is shared by every output of its item.
CHAT_INPUT_ITEM = "refund-1"


def _with_reading_examples(records: list[dict]) -> list[dict]:
    for record in records:
        if record["item_id"] == CHAT_INPUT_ITEM:
            record["input"] = CHAT_INPUT
        example = READING_EXAMPLES.get((record["item_id"], record["system"]))
        if example:
            record["output"] = example["output"]
            record["metadata"]["kind"] = "good"
            record["human"] = _truth("good")
    return records


CRITERIA = [
    ("grounded", "Grounded", "Every factual claim in the answer is supported by the help-centre article."),
    ("helpful", "Helpful", "The answer tells the customer what to do about the question they asked."),
    ("tone", "Tone", "Polite and calm; never blames the customer."),
]

GUIDELINES = """Grade each answer as a support lead would before it is sent to a customer.

* **Pass** when you would send the answer as it is. **Fail** when you would not.
* Use **unsure** only when the article does not let you decide.
* Per-criterion verdicts are optional but help the team choose automated checks.
* Add a note whenever you fail an answer for a reason that no criterion covers yet.
"""
